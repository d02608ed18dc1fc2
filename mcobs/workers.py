"""Extra DNS worker processes for `mcobs serve` (`dns.workers` > 1).

Each worker follows the Redis catalog itself and answers on the same port
(SO_REUSEPORT); the hub process is worker 0. Workers keep their own DNS
counters, so `/metrics` shows the hub process's DNS traffic only.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

from mcobs.catalog.redis import RedisCatalog
from mcobs.config import Settings, load_settings
from mcobs.dnsserver.worker import run_dns_worker, serve_dns
from mcobs.hub import Planner, catalog_watcher, locator, rate_limit, zone_policy


async def _serve(settings: Settings, port: int, stop: asyncio.Event) -> None:
    store = RedisCatalog.from_url(settings.redis.url, prefix=settings.redis.prefix)
    planner = Planner(zone_policy(settings), time.time)
    watcher = catalog_watcher(store, settings, planner.on_snapshot)
    watcher.start()
    replan = asyncio.create_task(planner.run())
    try:
        await serve_dns(
            lambda: planner.plan.view,
            settings.dns.host,
            port,
            stop=stop,
            rate_limit=rate_limit(settings),
            locate=locator(settings),
        )
    finally:
        replan.cancel()
        await asyncio.gather(replan, return_exceptions=True)
        await watcher.stop()
        await store.close()


def _worker(config: str, port: int) -> None:
    settings = load_settings(Path(config))
    run_dns_worker(functools.partial(_serve, settings, port))


def start_workers(config: Path, port: int, count: int) -> list[BaseProcess]:
    """`count` worker processes answering on `port` (spawned, so no state is shared)."""
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    for n in range(count):
        process = context.Process(
            target=_worker, args=(str(config), port), name=f"mcobs-dns-{n + 1}", daemon=True
        )
        process.start()
        processes.append(process)
    return processes


def stop_workers(processes: list[BaseProcess], timeout: float = 10.0) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
