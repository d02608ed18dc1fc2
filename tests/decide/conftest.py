"""Fixtures: a settable clock and the decide backends (memory and real Redis) side by side."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Protocol

import pytest
from redis.asyncio import Redis

from mcobs.decide.events import EventLog, MemoryEventLog, RedisEventLog, connect
from mcobs.decide.keys import DecideKeys
from mcobs.decide.lease import Lease, LeaseBoard, MemoryLease, RedisLease
from tests.redis_server import RedisServer

_prefixes = itertools.count()


class Clock:
    """A settable clock (seconds); the lease's monotonic clock and the wall clock alike."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Backend(Protocol):
    kind: str
    clock: Clock

    def lease(self, holder: str, ttl: float = 10.0) -> Lease: ...

    def log(self, maxlen: int = 100_000) -> EventLog: ...

    async def expire(self) -> None:
        """The lease runs out now, as a dead holder's would."""
        ...


class MemoryBackend:
    kind = "memory"

    def __init__(self) -> None:
        self.clock = Clock()
        self.board = LeaseBoard(self.clock)
        self._log: MemoryEventLog | None = None

    def lease(self, holder: str, ttl: float = 10.0) -> Lease:
        return MemoryLease(
            self.board, holder=holder, ttl=ttl, clock=self.clock, wall_clock=self.clock
        )

    def log(self, maxlen: int = 100_000) -> EventLog:
        # One log per board, as one Redis stream per prefix: every handle sees the same.
        if self._log is None or self._log.maxlen != maxlen:
            self._log = MemoryEventLog(self.board, maxlen=maxlen, clock=self.clock)
        return self._log

    async def expire(self) -> None:
        self.board.expire()

    async def close(self) -> None:
        if self._log is not None:
            await self._log.close()


class RedisBackend:
    kind = "redis"

    def __init__(self, server: RedisServer) -> None:
        self.clock = Clock()
        self.prefix = f"decide{next(_prefixes)}"
        self.keys = DecideKeys.for_prefix(self.prefix)
        self.clients: list[Redis] = []
        self.logs: list[EventLog] = []
        self._url = server.url

    def client(self) -> Redis:
        client = connect(self._url)
        self.clients.append(client)
        return client

    def lease(self, holder: str, ttl: float = 10.0) -> Lease:
        return RedisLease(
            self.client(),
            prefix=self.prefix,
            holder=holder,
            ttl=ttl,
            clock=self.clock,
            wall_clock=self.clock,
        )

    def log(self, maxlen: int = 100_000) -> EventLog:
        log = RedisEventLog(self.client(), prefix=self.prefix, maxlen=maxlen)
        self.logs.append(log)
        return log

    async def expire(self) -> None:
        await self.client().delete(self.keys.lease)

    async def close(self) -> None:
        for log in self.logs:
            await log.close()
        for client in self.clients:
            await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    chosen: MemoryBackend | RedisBackend
    if request.param == "redis":
        chosen = RedisBackend(request.getfixturevalue("redis_server"))
    else:
        chosen = MemoryBackend()
    yield chosen
    await chosen.close()


@pytest.fixture
async def redis_backend(redis_server: RedisServer) -> AsyncIterator[RedisBackend]:
    chosen = RedisBackend(redis_server)
    yield chosen
    await chosen.close()
