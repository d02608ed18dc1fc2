"""The global catalog: every cluster's latest report, shared between replicas.

`store` holds the contract (`CatalogStore`, `CatalogUnavailable`) and the
`CatalogWatcher`; `memory` the embedded store; `redis` the Redis store; `codec`
the stored encoding. `mcobs.catalog.redis` is not imported here, so using the
embedded store does not load redis-py.
"""

from mcobs.catalog.codec import CatalogDecodeError
from mcobs.catalog.memory import MemoryCatalog
from mcobs.catalog.store import CatalogStore, CatalogUnavailable, CatalogWatcher

__all__ = [
    "CatalogDecodeError",
    "CatalogStore",
    "CatalogUnavailable",
    "CatalogWatcher",
    "MemoryCatalog",
]
