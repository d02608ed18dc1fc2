"""Fixtures: a real Redis Cluster and a real Sentinel deployment, and stores on them.

The deployments are started once per session (a few seconds each). A test
that kills a master calls `revive()` afterwards (the `*_after_failover`
fixtures do), so every test starts with each shard whole.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

import pytest

from mcobs.catalog.redis import RedisCatalog
from mcobs.catalog.store import CatalogStore
from tests.catalog.conftest import OpenStore
from tests.decide.conftest import RedisBackend
from tests.e2e.conftest import fleet, settings  # noqa: F401  (fixtures of the e2e checks)
from tests.notify.conftest import Stores
from tests.redis_cluster import RedisClusterServers, RedisSentinelServers

_prefixes = itertools.count()


class Deployment(Protocol):
    @property
    def url(self) -> str: ...


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """3 masters and 3 replicas for the session."""
    with RedisClusterServers() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinelServers]:
    """A master, a replica and 3 sentinels for the session."""
    with RedisSentinelServers() as sentinel:
        yield sentinel


@pytest.fixture
def cluster_after_failover(redis_cluster: RedisClusterServers) -> Iterator[RedisClusterServers]:
    """The session cluster; nodes this test kills are restarted afterwards."""
    yield redis_cluster
    redis_cluster.revive()


@pytest.fixture
def sentinel_after_failover(
    redis_sentinel: RedisSentinelServers,
) -> Iterator[RedisSentinelServers]:
    """The session Sentinel deployment; servers this test kills are restarted afterwards."""
    yield redis_sentinel
    redis_sentinel.revive()


@pytest.fixture(params=["cluster", "sentinel"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    name = "redis_cluster" if request.param == "cluster" else "redis_sentinel"
    found: Deployment = request.getfixturevalue(name)
    return found


# The contract fixtures of tests/catalog, tests/decide and tests/notify, on the deployments:
# the contract tests themselves are imported unchanged (see test_contracts.py).


@pytest.fixture
async def open_store(deployment: Deployment) -> AsyncIterator[OpenStore]:
    stores: list[CatalogStore] = []
    prefix = f"contract{next(_prefixes)}"

    async def open_(
        *, ttl: float | None = None, clock: Callable[[], float] | None = None
    ) -> CatalogStore:
        store = RedisCatalog.from_url(
            deployment.url, prefix=prefix, ttl=ttl, clock=clock or time.time
        )
        stores.append(store)
        return store

    yield open_
    for store in stores:
        await store.close()


@pytest.fixture
async def backend(deployment: Deployment) -> AsyncIterator[RedisBackend]:
    chosen = RedisBackend(deployment)  # type: ignore[arg-type]  # it only reads .url
    yield chosen
    await chosen.close()


@pytest.fixture
async def stores(deployment: Deployment) -> AsyncIterator[Stores]:
    opened = Stores("redis", deployment)  # type: ignore[arg-type]  # it only reads .url
    yield opened
    await opened.close()
