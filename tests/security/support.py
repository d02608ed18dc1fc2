"""A real hub on the test's event loop: simulated clusters, in-memory stores, a client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from mcobs.catalog.memory import MemoryCatalog
from mcobs.config import Settings
from mcobs.decide.events import MemoryEventLog
from mcobs.decide.lease import LeaseBoard, MemoryLease
from mcobs.hub import Hub
from tests.security.livehub import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    """The hub's HTTP API, seen by a client on loopback."""

    hub: Hub
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.http_port}"

    async def call(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {**(AUTH if auth else {}), **kwargs.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as r:
            raw = await r.read()
            try:
                body: Any = await r.json(content_type=None)
            except ValueError:
                body = raw.decode(errors="replace")
            return r.status, body, r

    async def get(self, path: str, **kwargs: Any) -> Any:
        status, body, _ = await self.call("GET", path, **kwargs)
        assert status == 200, (path, status, body)
        return body


@contextlib.asynccontextmanager
async def running_hub(
    settings: Settings,
    *,
    token: str | None = TOKEN,
    extra_routes: Sequence[web.AbstractRouteDef] = (),
    clusters: int = 3,
) -> AsyncIterator[Api]:
    """The hub with every route (and the OpenAPI document), once every cluster reported."""
    board = LeaseBoard()
    store = MemoryCatalog()
    events = MemoryEventLog(board)
    try:
        async with (
            Hub(
                settings,
                store,
                token=token,
                extra_routes=list(extra_routes),
                lease=MemoryLease(board, holder="security-suite"),
                events=events,
            ) as hub,
            aiohttp.ClientSession() as http,
        ):
            await eventually(lambda: _reported(hub, clusters))
            yield Api(hub, http)
    finally:
        await events.close()
        await store.close()


async def _reported(hub: Hub, clusters: int) -> bool:
    return len(hub.state.snapshot.reports) >= clusters


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 15.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {limit}s")
