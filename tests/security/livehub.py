"""A real hub and three simulated clusters on their own event loop, in a thread.

Schemathesis calls the API with blocking `requests`, so the hub it calls must
not share the test's event loop: `LiveHub` runs `SimFleet` + `Hub` (the demo's
settings, an in-memory catalog, lease and event log) in a background thread
and hands out the base URL once every cluster has reported.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from aiohttp import web

from mcobs.catalog.memory import MemoryCatalog
from mcobs.cli import demo_settings
from mcobs.decide.events import MemoryEventLog
from mcobs.decide.lease import LeaseBoard, MemoryLease
from mcobs.hub import Hub
from mcobs.sim.fleet import SimFleet

TOKEN = "s3cr3t-api-token-for-the-security-suite"
START_TIMEOUT = 30.0


class LiveHub:
    def __init__(
        self,
        workdir: Path,
        *,
        token: str | None = TOKEN,
        clusters: int = 3,
        extra_routes: Sequence[web.AbstractRouteDef] = (),
    ) -> None:
        self._workdir = workdir
        self._token = token
        self._clusters = clusters
        self._extra = list(extra_routes)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveHub:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self._shutdown()
            raise RuntimeError(f"the hub did not get ready within {START_TIMEOUT}s")
        if self._error is not None:
            self._thread.join(5)
            raise RuntimeError("the hub failed to start") from self._error
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)
        if self._error is not None and self._ready.is_set() and self.port:
            raise RuntimeError("the hub failed while running") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the test by __enter__ / __exit__
            self._error = error
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        board = LeaseBoard()
        store = MemoryCatalog()
        events = MemoryEventLog(board)
        try:
            async with SimFleet.default(clusters=self._clusters) as fleet:
                kubeconfig = fleet.write_kubeconfig(self._workdir / "kubeconfig")
                settings = demo_settings(fleet, kubeconfig, 0, 0)
                async with Hub(
                    settings,
                    store,
                    token=self._token,
                    extra_routes=self._extra,
                    lease=MemoryLease(board, holder="security-suite"),
                    events=events,
                ) as hub:
                    while len(hub.state.snapshot.reports) < self._clusters:
                        if self._stop.is_set():
                            return
                        await asyncio.sleep(0.05)
                    self.port = hub.http_port
                    self._ready.set()
                    await self._stop.wait()
        finally:
            await events.close()
            await store.close()
