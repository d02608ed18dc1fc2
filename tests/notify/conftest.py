"""Fixtures: a scriptable webhook receiver (a real aiohttp server), clocks, stores."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from mcobs.notify.consumer import Consumer
from mcobs.notify.event import Event, cluster_state_changed
from mcobs.notify.memory import MemoryOutboxStore
from mcobs.notify.payloads import PayloadFormat
from mcobs.notify.redis import RedisOutboxStore
from mcobs.notify.retry import RetryPolicy
from mcobs.notify.signing import SigningKey, new_secret
from mcobs.notify.store import OutboxStore
from tests.redis_server import RedisServer

SECRET = new_secret(random.Random(7))
"""A fixed test secret; tests check it never shows anywhere."""

_prefixes = itertools.count()


class Clock:
    """A settable clock (Unix seconds); starts at the real time so signatures verify."""

    def __init__(self, now: float | None = None) -> None:
        self.now = float(int(time.time())) if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Received:
    headers: Mapping[str, str]
    body: bytes
    status: int

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    """Never answer (until the test ends): the sender times out."""


class Receiver:
    """A webhook consumer: answers from a script (default 200) and records every request."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.received: list[Received] = []
        self.released = asyncio.Event()
        self._arrived = asyncio.Event()
        self.url = ""

    def reply(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def fail(self, times: int, status: int = 503, **headers: str) -> None:
        self.reply(*(Reply(status, headers) for _ in range(times)))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        reply = self.script.popleft() if self.script else self.default
        self.received.append(Received(dict(request.headers), body, reply.status))
        self._arrived.set()
        if reply.hang:
            await self.released.wait()
        return web.Response(status=reply.status, headers=dict(reply.headers))

    async def wait_delivered(self, count: int) -> None:
        """Until `count` requests were answered 2xx (real time; wrap in `asyncio.timeout`)."""
        while len(self.delivered) < count:
            self._arrived.clear()
            await self._arrived.wait()

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def verified_events(self, secret: str = SECRET) -> list[dict[str, Any]]:
        """Bodies of 2xx-answered requests, each verified by the standardwebhooks library."""
        webhook = Webhook(secret)
        return [webhook.verify(r.body, dict(r.headers)) for r in self.delivered]


async def start_receiver() -> tuple[Receiver, web.AppRunner]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hooks/mcobs"
    return receiver, runner


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver, runner = await start_receiver()
    yield receiver
    receiver.released.set()
    await runner.cleanup()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def consumer(
    url: str,
    name: str = "pager",
    *,
    events: tuple[str, ...] = ("*",),
    format: PayloadFormat = PayloadFormat.STANDARD,
    timeout: float = 2.0,
    retry: RetryPolicy | None = None,
    deny_private: bool = False,
) -> Consumer:
    return Consumer(
        name=name,
        url=url,
        key=SigningKey.from_secret(SECRET),
        events=events,
        format=format,
        timeout=timeout,
        retry=retry if retry is not None else RetryPolicy(backoff_base=1.0, backoff_cap=300.0),
        deny_private=deny_private,
    )


def down_event(clock: Clock, rng: random.Random, cluster: str = "eu-west") -> Event:
    return cluster_state_changed(
        cluster, "healthy", "down", ["API unreachable"], clock=clock, rng=rng
    )


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test alone, for stopping and restarting."""
    with RedisServer() as server:
        yield server


class Stores:
    """Opens handles on one outbox store of this test (Redis: a new client each time)."""

    def __init__(self, kind: str, server: RedisServer | None) -> None:
        self.kind = kind
        self.server = server
        self.prefix = f"notify{next(_prefixes)}"
        self.opened: list[OutboxStore] = []
        self._memory = MemoryOutboxStore(max_dead_letters=5)

    def open(self) -> OutboxStore:
        if self.server is None:
            return self._memory
        store = RedisOutboxStore.from_url(self.server.url, prefix=self.prefix, max_dead_letters=5)
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    opened = Stores(request.param, server)
    yield opened
    await opened.close()


@pytest.fixture
async def redis_stores(redis_server: RedisServer) -> AsyncIterator[Stores]:
    opened = Stores("redis", redis_server)
    yield opened
    await opened.close()
