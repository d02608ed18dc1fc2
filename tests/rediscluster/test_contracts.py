"""The store contracts of tests/catalog, tests/decide and tests/notify, unchanged, run on a
Redis Cluster (3 masters, 3 replicas) and through Sentinel.

Every test function of those modules that takes only the contract fixture
(`open_store`, `backend`, `stores`) is collected here too; the fixtures of
this folder's conftest open the stores on the deployments instead of one
redis-server. A contract test added there runs here without any change.
"""

from __future__ import annotations

import inspect
from types import ModuleType

from tests.catalog import test_contract as catalog_contract
from tests.decide import test_events, test_lease
from tests.notify import test_store_contract

CONTRACT_FIXTURES = {"open_store", "backend", "stores"}


def _contract_tests(module: ModuleType) -> dict[str, object]:
    found = {}
    for name, function in vars(module).items():
        if not name.startswith("test_") or not inspect.isfunction(function):
            continue
        parameters = set(inspect.signature(function).parameters)
        if parameters and parameters <= CONTRACT_FIXTURES:
            found[name] = function
    return found


for _module in (catalog_contract, test_lease, test_events, test_store_contract):
    globals().update(_contract_tests(_module))
