"""The CatalogStore contract, run against MemoryCatalog and RedisCatalog alike."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

import pytest

from mcobs.catalog.codec import CatalogDecodeError
from mcobs.catalog.store import CatalogUnavailable, CatalogWatcher
from mcobs.model import AlertMark, ClusterReport, Drain, Scope, ServiceKey
from tests.catalog.builders import report, service
from tests.catalog.conftest import Clock, OpenStore
from tests.catalog.helpers import next_change, wait_until


async def test_a_put_report_comes_back_whole(open_store: OpenStore) -> None:
    store = await open_store()
    assert (await store.snapshot()).reports == {}
    await store.put(report("eu-west", services=3))
    await store.put(report("us-east"))
    snapshot = await (await open_store()).snapshot()
    assert dict(snapshot.reports) == {
        "eu-west": report("eu-west", services=3),
        "us-east": report("us-east"),
    }


async def test_a_put_replaces_the_whole_report(open_store: OpenStore) -> None:
    store = await open_store()
    await store.put(report(services=3, tag="old"))
    await store.put(report(services=1, tag="new", observed_at=2e9))
    assert (await store.snapshot()).reports["eu-west"] == report(
        services=1, tag="new", observed_at=2e9
    )


async def test_version_grows_with_every_change(open_store: OpenStore) -> None:
    store = await open_store()
    versions = [(await store.snapshot()).version]
    for change in (
        store.put(report("a")),
        store.put(report("a", observed_at=2e9)),
        store.put(report("b")),
        store.remove("a"),
    ):
        await change
        versions.append((await store.snapshot()).version)
    assert versions == sorted(set(versions)), versions
    await store.remove("never-there")
    assert (await store.snapshot()).version >= versions[-1]


async def test_remove_forgets_one_cluster(open_store: OpenStore) -> None:
    store = await open_store()
    await store.put(report("a"))
    await store.put(report("b"))
    await store.remove("a")
    assert set((await store.snapshot()).reports) == {"b"}


async def test_a_reader_never_sees_a_mixed_report(open_store: OpenStore) -> None:
    writer, reader = await open_store(), await open_store()
    written = [report(services=1 + i % 7, tag=str(i), observed_at=float(i)) for i in range(150)]
    seen: list[ClusterReport] = []

    async def write() -> None:
        for r in written:
            await writer.put(r)
            await asyncio.sleep(0)

    async def read(done: asyncio.Task[None]) -> None:
        while not done.done():
            snapshot = await reader.snapshot()
            if "eu-west" in snapshot.reports:
                seen.append(snapshot.reports["eu-west"])
            await asyncio.sleep(0)

    writing = asyncio.create_task(write())
    await asyncio.wait_for(asyncio.gather(writing, read(writing), read(writing)), 5)
    assert len(seen) > 10
    assert all(r in written for r in seen)


async def test_a_change_reaches_another_handle_within_a_second(open_store: OpenStore) -> None:
    writer, reader = await open_store(), await open_store()
    async with contextlib.aclosing(reader.subscribe()) as changes:
        assert await next_change(changes) is None  # live: reload everything now
        await writer.put(report("a"))
        version = await next_change(changes)
        assert version == (await reader.snapshot()).version
        await writer.put(report("b"))
        await writer.remove("a")
        final = (await reader.snapshot()).version
        while version != final:
            version = await next_change(changes)


async def test_closing_the_store_ends_its_subscriptions(open_store: OpenStore) -> None:
    store = await open_store()
    async with contextlib.aclosing(store.subscribe()) as changes:
        assert await next_change(changes) is None
        pending = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.05)
        await store.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, 1)
    with pytest.raises(CatalogUnavailable):
        await store.snapshot()
    with pytest.raises(CatalogUnavailable):
        await store.put(report())


async def test_clusters_that_stop_reporting_are_kept(open_store: OpenStore) -> None:
    clock = Clock()
    store = await open_store(clock=clock)
    await store.put(report("quiet", observed_at=clock.now))
    clock.now += 365 * 86400
    await store.put(report("busy", observed_at=clock.now))
    assert set((await store.snapshot()).reports) == {"quiet", "busy"}


async def test_a_ttl_forgets_clusters_that_stopped_reporting(open_store: OpenStore) -> None:
    clock = Clock()
    store = await open_store(ttl=3600, clock=clock)
    await store.put(report("quiet"))
    await store.put(report("busy"))
    clock.now += 3000
    await store.put(report("busy"))
    clock.now += 601
    assert set((await store.snapshot()).reports) == {"busy"}  # hidden at once
    version = (await store.snapshot()).version
    await store.put(report("other"))
    await store.remove("other")
    assert set((await store.snapshot()).reports) == {"busy"}  # and deleted by the next put
    assert (await store.snapshot()).version > version


async def test_a_heartbeat_freshens_a_report_without_counting_as_a_change(
    open_store: OpenStore,
) -> None:
    writer, reader = await open_store(), await open_store()
    assert not await writer.heartbeat("eu-west", 2e9)  # nothing to freshen: nothing written
    assert (await reader.snapshot()).reports == {}
    await writer.put(report(observed_at=1e9))
    before = await reader.snapshot()
    async with contextlib.aclosing(reader.subscribe()) as changes:
        assert await next_change(changes) is None
        assert await writer.heartbeat("eu-west", 2e9)
        with pytest.raises(TimeoutError):
            await next_change(changes, within=0.3)  # readers are not woken for a heartbeat
    after = await reader.snapshot()
    assert after.version == before.version
    assert after.reports["eu-west"] == report(observed_at=2e9)
    assert await writer.heartbeat("eu-west", 1.5e9)  # an older heartbeat moves nothing back
    assert (await reader.snapshot()).reports["eu-west"].observed_at == 2e9
    await writer.put(report(observed_at=1e9, tag="new"))  # a new report starts afresh
    assert (await reader.snapshot()).reports["eu-west"] == report(observed_at=1e9, tag="new")


async def test_a_heartbeat_keeps_a_cluster_within_its_ttl(open_store: OpenStore) -> None:
    clock = Clock()
    store = await open_store(ttl=3600, clock=clock)
    await store.put(report("quiet"))
    clock.now += 3000
    assert await store.heartbeat("quiet", clock.now)
    clock.now += 3000
    assert set((await store.snapshot()).reports) == {"quiet"}
    clock.now += 601
    assert (await store.snapshot()).reports == {}


async def test_a_report_readers_would_skip_is_refused(open_store: OpenStore) -> None:
    store = await open_store()
    await store.put(report())
    before = await store.snapshot()
    bad = replace(report(), services=(service("eu-west", addresses=("not-an-ip",)),))
    with pytest.raises(CatalogDecodeError, match=r"services\[0\]\.addresses\[0\]"):
        await store.put(bad)
    assert await store.snapshot() == before


async def test_a_watcher_follows_another_handle(open_store: OpenStore) -> None:
    writer, reader = await open_store(), await open_store()
    await writer.put(report("a"))
    seen: list[int] = []
    watcher = CatalogWatcher(reader, on_change=lambda s: seen.append(s.version), poll_interval=60)
    async with watcher:
        first = await asyncio.wait_for(watcher.wait_loaded(), 1)
        assert set(first.reports) == {"a"}
        await writer.put(report("b"))  # only a notification can deliver this in time
        await wait_until(lambda: set(watcher.current.reports) == {"a", "b"})
        assert watcher.last_error is None
    assert seen == sorted(seen) and len(seen) == 2


async def test_drains_and_alerts_are_kept_beside_the_reports(open_store: OpenStore) -> None:
    store = await open_store()
    other = await open_store()
    web = ServiceKey("default", "web")
    drain = Drain(Scope("eu-west", web), "maintenance", created_at=1e9, expires_at=2e9, by="ops")
    alert = AlertMark("fp1", Scope("us-east"), "KubeAPIDown", "critical", True, 1e9, None, "dead")
    await store.put(report("eu-west"))
    before = (await other.snapshot()).version
    await store.put_drain(drain)
    await store.put_alert(alert)
    snapshot = await other.snapshot()
    assert snapshot.version > before
    assert dict(snapshot.drains) == {"eu-west/default/web": drain}
    assert dict(snapshot.alerts) == {"fp1": alert}
    assert set(snapshot.reports) == {"eu-west"}

    assert await store.remove_drain(Scope("eu-west", web))
    assert not await store.remove_drain(Scope("eu-west", web))
    assert await store.remove_alert("fp1")
    assert not await store.remove_alert("fp1")
    snapshot = await other.snapshot()
    assert not snapshot.drains and not snapshot.alerts
