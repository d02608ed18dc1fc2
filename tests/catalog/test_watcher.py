"""CatalogWatcher: readiness, one callback per change, last good snapshot, backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import pytest

from mcobs.catalog.memory import MemoryCatalog
from mcobs.catalog.store import CatalogUnavailable, CatalogWatcher
from mcobs.model import EMPTY_SNAPSHOT, CatalogSnapshot, ClusterReport
from tests.catalog.builders import report
from tests.catalog.helpers import wait_until


class Flaky:
    """A MemoryCatalog whose snapshots fail while `down`; counts snapshot calls."""

    def __init__(self) -> None:
        self.inner = MemoryCatalog()
        self.down = False
        self.snapshots = 0

    async def put(self, report: ClusterReport) -> None:
        await self.inner.put(report)

    async def remove(self, cluster: str) -> None:
        await self.inner.remove(cluster)

    async def snapshot(self) -> CatalogSnapshot:
        self.snapshots += 1
        if self.down:
            raise CatalogUnavailable("connection refused")
        return await self.inner.snapshot()

    def subscribe(self) -> AsyncGenerator[int | None, None]:
        return self.inner.subscribe()

    async def close(self) -> None:
        await self.inner.close()


async def test_not_ready_until_the_first_snapshot() -> None:
    store = MemoryCatalog()
    await store.put(report("a"))
    watcher = CatalogWatcher(store)
    assert not watcher.loaded and watcher.current is EMPTY_SNAPSHOT
    async with watcher:
        snapshot = await asyncio.wait_for(watcher.wait_loaded(), 1)
        assert watcher.loaded and set(snapshot.reports) == {"a"}
    assert watcher.loaded  # stopping keeps the last snapshot


async def test_one_callback_per_change_not_per_poll() -> None:
    store = MemoryCatalog()
    seen: list[CatalogSnapshot] = []
    async with CatalogWatcher(store, on_change=seen.append, poll_interval=0.01) as watcher:
        await asyncio.wait_for(watcher.wait_loaded(), 1)
        await store.put(report("a"))
        await wait_until(lambda: len(seen) == 2)
        await asyncio.sleep(0.1)  # ten polls
    assert [set(s.reports) for s in seen] == [set(), {"a"}]


async def test_a_failing_callback_does_not_stop_the_watcher(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryCatalog()

    def explode(snapshot: CatalogSnapshot) -> None:
        raise RuntimeError("boom")

    async with CatalogWatcher(store, on_change=explode) as watcher:
        await asyncio.wait_for(watcher.wait_loaded(), 1)
        await store.put(report("a"))
        await wait_until(lambda: "a" in watcher.current.reports)
    assert "on_change callback failed" in caplog.text


async def test_keeps_the_last_snapshot_and_backs_off_while_unavailable() -> None:
    store = Flaky()
    await store.put(report("a"))
    watcher = CatalogWatcher(store, poll_interval=0.01, retry_min=0.01, retry_max=0.08)
    async with watcher:
        before = await asyncio.wait_for(watcher.wait_loaded(), 1)
        store.down = True
        await wait_until(lambda: watcher.last_error is not None)
        attempts = store.snapshots
        await asyncio.sleep(0.5)
        # 0.01 + 0.02 + 0.04 + 0.08 + 0.08 ...: a handful of tries, not one every poll
        assert 3 <= store.snapshots - attempts <= 12
        assert watcher.current is before
        assert watcher.last_error == "connection refused"
        store.down = False
        await store.put(report("b"))
        await wait_until(lambda: set(watcher.current.reports) == {"a", "b"})
        assert watcher.last_error is None


async def test_start_and_stop() -> None:
    watcher = CatalogWatcher(MemoryCatalog())
    await watcher.stop()  # before start: nothing to do
    watcher.start()
    with pytest.raises(RuntimeError, match="already started"):
        watcher.start()
    await watcher.stop()
    await watcher.stop()


async def test_a_closed_store_stops_notifications_but_not_the_watcher(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryCatalog()
    async with CatalogWatcher(store, poll_interval=0.01, retry_max=0.02) as watcher:
        await asyncio.wait_for(watcher.wait_loaded(), 1)
        with caplog.at_level(logging.WARNING):
            await store.close()
            await wait_until(lambda: watcher.last_error == "catalog is closed")
    assert watcher.loaded


async def test_a_burst_of_changes_costs_few_reloads() -> None:
    store = Flaky()
    async with CatalogWatcher(store, poll_interval=60, min_interval=0.1) as watcher:
        await asyncio.wait_for(watcher.wait_loaded(), 1)
        before = store.snapshots
        for i in range(50):
            await store.put(report(observed_at=float(i)))
            await asyncio.sleep(0)
        last = report(observed_at=49.0)
        await wait_until(lambda: watcher.current.reports.get("eu-west") == last)
        assert store.snapshots - before <= 3
