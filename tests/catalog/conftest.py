"""Fixtures: a real redis-server per session, catalogs of either kind, a task-leak guard."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

import pytest

from mcobs.catalog.memory import MemoryCatalog
from mcobs.catalog.redis import RedisCatalog
from mcobs.catalog.store import CatalogStore
from tests.redis_server import RedisServer

_prefixes = itertools.count()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server of this test alone, for stopping and restarting."""
    with RedisServer() as server:
        yield server


class OpenStore(Protocol):
    async def __call__(
        self, *, ttl: float | None = None, clock: Callable[[], float] | None = None
    ) -> CatalogStore: ...


class Clock:
    """A settable clock (Unix seconds)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def open_store(request: pytest.FixtureRequest) -> AsyncIterator[OpenStore]:
    """Opens handles on one catalog of this test.

    Redis: each call is a new client (another connection, like another replica)
    on a prefix of this test alone. Memory: every call returns the same store.
    """
    stores: list[CatalogStore] = []
    prefix = f"test{next(_prefixes)}"
    server: RedisServer | None = None
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")

    async def open_(
        *, ttl: float | None = None, clock: Callable[[], float] | None = None
    ) -> CatalogStore:
        now = clock if clock is not None else time.time
        store: CatalogStore
        if server is None:
            if stores:
                return stores[0]
            store = MemoryCatalog(ttl=ttl, clock=now)
        else:
            store = RedisCatalog.from_url(server.url, prefix=prefix, ttl=ttl, clock=now)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        await store.close()
