"""Fixtures: shard managers on a real redis-server, a settable local clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Iterator

import pytest

from mcobs.redisconn import AnyRedis, connect
from mcobs.shard.manager import ShardManager
from tests.redis_server import RedisServer

_prefixes = itertools.count()

CLUSTERS = tuple(f"cluster-{n:02d}" for n in range(30))


class Clock:
    """A settable monotonic clock (the managers' local judgement of their claims)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Group:
    """Replicas of one shard group: each manager has its own client, like its own process."""

    def __init__(self, url: str, ttl: float) -> None:
        self.url = url
        self.ttl = ttl
        self.prefix = f"shard{next(_prefixes)}"
        self.clock = Clock()
        self.clients: list[AnyRedis] = []
        self.managers: dict[str, ShardManager] = {}
        self.changes: dict[str, list[frozenset[str]]] = {}

    def add(self, replica: str, clusters: Iterable[str] = CLUSTERS) -> ShardManager:
        client = connect(self.url)
        self.clients.append(client)
        seen = self.changes.setdefault(replica, [])
        manager = ShardManager(
            client,
            replica,
            tuple(clusters),
            ttl=self.ttl,
            prefix=self.prefix,
            clock=self.clock,
            on_change=seen.append,
        )
        self.managers[replica] = manager
        return manager

    def assert_no_overlap(self) -> None:
        owned = [m.owned for m in self.managers.values()]
        assert sum(len(o) for o in owned) == len(frozenset().union(*owned)), owned

    def owners(self, among: Iterable[ShardManager]) -> dict[str, str]:
        return {c: m.replica_id for m in among for c in m.owned}

    async def settle(self, managers: Iterable[ShardManager], rounds: int = 6) -> int:
        """Step `managers` in turn until they cover every cluster with nothing pending.

        Checks after every single step that no cluster has two owners; returns the
        number of rounds it took.
        """
        chosen = list(managers)
        for round_ in range(1, rounds + 1):
            for manager in chosen:
                await manager.step()
                self.assert_no_overlap()
            covered = frozenset().union(*(m.owned for m in chosen))
            if covered == set(CLUSTERS) and not any(m.waiting_for for m in chosen):
                return round_
        raise AssertionError(f"not settled after {rounds} rounds: {self.owners(chosen)}")

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


@pytest.fixture
async def group(redis_server: RedisServer) -> AsyncIterator[Group]:
    made = Group(redis_server.url, ttl=10.0)
    yield made
    await made.close()


@pytest.fixture
async def short_group(redis_server: RedisServer) -> AsyncIterator[Group]:
    """Leases that Redis expires after one second (for deaths and real-time runs)."""
    made = Group(redis_server.url, ttl=1.0)
    yield made
    await made.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test alone, for stopping and restarting."""
    with RedisServer() as server:
        yield server
