"""Running DNS in worker processes that share one port (SO_REUSEPORT), on uvloop.

A worker is a process that runs `run_dns_worker(main)`: a fresh event loop (uvloop
when it is installed), SIGTERM and SIGINT turned into a `stop` event, and `main(stop)`
until it returns. `main` builds what the worker serves, typically its own catalog
watcher and planner, and calls `serve_dns(...)`, which binds with SO_REUSEPORT so the
kernel spreads queries over the workers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from mcobs.dnsserver.server import DnsServer, ViewProvider

log = logging.getLogger(__name__)

WorkerMain = Callable[[asyncio.Event], Awaitable[None]]


def new_event_loop(use_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """A uvloop loop when asked for and installed, else the default asyncio loop."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency
            log.info("uvloop is not installed; using the asyncio event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_dns_worker(main: WorkerMain, *, use_uvloop: bool = True) -> None:
    """Run `main(stop)` in this process until it returns; SIGTERM/SIGINT set `stop`."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await main(stop)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    with asyncio.Runner(loop_factory=lambda: new_event_loop(use_uvloop)) as runner:
        runner.run(run())


async def serve_dns(
    view_provider: ViewProvider,
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    ready: Callable[[DnsServer], None] | None = None,
    **options: Any,
) -> None:
    """Serve DNS on `host`:`port`, shared with other workers, until `stop` is set.

    `options` go to `DnsServer`; `ready(server)` is called once it listens.
    """
    async with DnsServer(view_provider, host, port, reuse_port=True, **options) as server:
        if ready is not None:
            ready(server)
        await stop.wait()
