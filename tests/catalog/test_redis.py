"""RedisCatalog only: key layout, unreadable entries, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from mcobs.catalog.codec import report_to_bytes
from mcobs.catalog.redis import CatalogKeys, RedisCatalog, announcement
from mcobs.catalog.store import CatalogUnavailable, CatalogWatcher
from tests.catalog.builders import report
from tests.catalog.conftest import Clock
from tests.catalog.helpers import next_change, wait_until
from tests.redis_server import RedisServer


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def catalog(
    url: str,
    prefix: str,
    *,
    reply_timeout: float = 2.0,
    resubscribe_max: float = 5.0,
    keepalive: float = 10.0,
    resync_after: float = 60.0,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[RedisCatalog]:
    store = RedisCatalog.from_url(
        url,
        prefix=prefix,
        timeout=reply_timeout,
        resubscribe_max=resubscribe_max,
        keepalive=keepalive,
        resync_after=resync_after,
        clock=clock,
    )
    try:
        yield store
    finally:
        await store.close()


def test_every_key_of_a_catalog_is_in_one_hash_slot() -> None:
    keys = CatalogKeys.for_prefix("mcobs")
    assert keys == CatalogKeys(
        reports="mcobs:{catalog}:reports",
        version="mcobs:{catalog}:version",
        expiry="mcobs:{catalog}:expiry",
        channel="mcobs:{catalog}:changes",
        overrides="mcobs:{catalog}:overrides",
        seen="mcobs:{catalog}:seen",
    )
    stored = (keys.reports, keys.version, keys.expiry, keys.overrides, keys.seen, keys.channel)
    assert len({key_slot(k.encode()) for k in stored}) == 1
    for bad in ("", "a{b", "a}"):
        with pytest.raises(ValueError, match="prefix"):
            CatalogKeys.for_prefix(bad)


async def test_key_layout(redis_server: RedisServer, raw: Redis) -> None:
    async with catalog(redis_server.url, "layout") as store:
        pubsub = raw.pubsub()
        await pubsub.subscribe("layout:{catalog}:changes")
        await pubsub.get_message(timeout=1)
        await store.put(report("eu-west"))
        message = await pubsub.get_message(timeout=1)
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert message is not None and json.loads(message["data"]) == [1, "eu-west"]
    assert await raw.hkeys("layout:{catalog}:reports") == [b"eu-west"]
    stored = await raw.hget("layout:{catalog}:reports", "eu-west")
    assert stored is not None and json.loads(stored)["schema"] == 1
    assert await raw.get("layout:{catalog}:version") == b"1"
    assert await raw.exists("layout:{catalog}:expiry") == 0  # no TTL configured


async def test_catalogs_with_other_prefixes_are_separate(redis_server: RedisServer) -> None:
    async with catalog(redis_server.url, "one") as one, catalog(redis_server.url, "two") as two:
        await one.put(report("a"))
        assert (await two.snapshot()).reports == {}
        assert set((await one.snapshot()).reports) == {"a"}


async def test_unreadable_entries_are_skipped_logged_once_and_the_rest_served(
    redis_server: RedisServer, raw: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with catalog(redis_server.url, "bad", resync_after=0) as store:
        await store.put(report("good"))
        wrong_type = json.loads(report_to_bytes(report("wrong-type")))
        wrong_type["services"][0]["ports"][0]["port"] = "80"
        future = json.loads(report_to_bytes(report("future")))
        future["schema"] = 2
        await raw.hset(
            store.keys.reports,
            mapping={
                "garbage": b"\x00not json",
                "wrong-type": json.dumps(wrong_type),
                "future": json.dumps(future),
                "liar": report_to_bytes(report("someone-else")),
            },
        )
        with caplog.at_level(logging.WARNING, logger="mcobs.catalog.redis"):
            snapshot = await store.snapshot()
            assert set(snapshot.reports) == {"good"}
            assert set(store.skipped) == {"garbage", "wrong-type", "future", "liar"}
            assert "services[0].ports[0].port: expected an integer" in store.skipped["wrong-type"]
            assert "unsupported schema 2" in store.skipped["future"]
            assert "'someone-else' stored under 'liar'" in store.skipped["liar"]
            assert len(caplog.records) == 4
            assert all(r.getMessage().startswith("catalog entry '") for r in caplog.records)
            await store.snapshot()
            assert len(caplog.records) == 4  # not again on every reload
        await raw.hdel(store.keys.reports, "garbage", "wrong-type", "future", "liar")
        await store.snapshot()
        assert store.skipped == {}


async def test_a_reader_that_heard_every_change_reads_back_only_the_touched_reports(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    async with (
        catalog(url, "delta") as writer,
        catalog(url, "delta") as reader,
        contextlib.aclosing(reader.subscribe()) as changes,
    ):
        assert await next_change(changes) is None
        for n in range(20):
            await writer.put(report(f"c{n:02d}", services=3))
            await next_change(changes)
        first = await reader.snapshot()
        assert len(first.reports) == 20 and reader.reads.decoded == 20
        await writer.put(report("c07", services=3, tag="changed"))
        await writer.remove("c11")
        await next_change(changes)
        await next_change(changes)
        whole = reader.reads.whole
        second = await reader.snapshot()
        assert reader.reads.whole == whole  # no HGETALL: only c07 and c11 were read
        assert reader.reads.decoded == 21
        assert second.reports["c07"] == report("c07", services=3, tag="changed")
        assert "c11" not in second.reports
        assert all(second.reports[c] is first.reports[c] for c in second.reports if c != "c07")
        async with catalog(url, "delta") as fresh:
            assert await fresh.snapshot() == second


async def test_a_reader_that_missed_a_change_reads_everything(redis_server: RedisServer) -> None:
    async with (
        catalog(redis_server.url, "gap") as writer,
        catalog(redis_server.url, "gap") as reader,
    ):
        await writer.put(report("a"))
        await reader.snapshot()
        await writer.put(report("b"))  # the reader does not subscribe: it cannot have heard
        assert set((await reader.snapshot()).reports) == {"a", "b"}
        assert reader.reads.whole_after_gap == 1


async def test_an_edit_behind_the_catalogs_back_is_seen_at_the_next_resync(
    redis_server: RedisServer, raw: Redis
) -> None:
    clock = Clock()
    async with catalog(redis_server.url, "oob", resync_after=60, clock=clock) as store:
        await store.put(report("a"))
        await store.put(report("b"))
        assert set((await store.snapshot()).reports) == {"a", "b"}
        await raw.hdel(store.keys.reports, "b")  # no version, no announcement
        assert set((await store.snapshot()).reports) == {"a", "b"}
        clock.now += 60
        assert set((await store.snapshot()).reports) == {"a"}


async def _fails_fast(operation: Callable[[], Awaitable[object]], within: float) -> None:
    started = time.monotonic()
    with pytest.raises(CatalogUnavailable):
        await asyncio.wait_for(operation(), 5)
    assert time.monotonic() - started < within


async def test_operations_fail_fast_while_redis_is_down(own_redis_server: RedisServer) -> None:
    async with catalog(own_redis_server.url, "down", reply_timeout=0.5) as store:
        await store.put(report())
        own_redis_server.stop()
        await _fails_fast(lambda: store.put(report()), 0.5)
        await _fails_fast(store.snapshot, 0.5)
        await _fails_fast(lambda: store.remove("eu-west"), 0.5)
        own_redis_server.start()
        await store.put(report("after"))  # the same client recovers by itself
        assert set((await store.snapshot()).reports) == {"after"}


async def test_a_hung_redis_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as hung:  # accepts, never answers
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        async with catalog(url, "hung", reply_timeout=0.3) as store:
            await _fails_fast(store.snapshot, 1.5)


async def test_a_subscription_resumes_after_a_restart(own_redis_server: RedisServer) -> None:
    url = own_redis_server.url
    async with (
        catalog(url, "sub", reply_timeout=0.5) as writer,
        catalog(url, "sub", reply_timeout=0.5, resubscribe_max=0.2) as reader,
        contextlib.aclosing(reader.subscribe()) as changes,
    ):
        assert await next_change(changes) is None
        await writer.put(report("a"))
        assert await next_change(changes) == 1
        own_redis_server.stop()
        await asyncio.sleep(0.1)
        own_redis_server.start()
        assert await next_change(changes, 3) is None  # reconnected: reload everything
        await writer.put(report("b"))
        assert await next_change(changes) == 1  # the restarted Redis lost everything


async def test_keepalive_pings_do_not_disturb_a_subscription(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with (
        catalog(url, "ping") as writer,
        catalog(url, "ping", keepalive=0.02) as reader,
        contextlib.aclosing(reader.subscribe()) as changes,
    ):
        assert await next_change(changes) is None
        waiting = asyncio.ensure_future(next_change(changes))
        await asyncio.sleep(0.2)  # a few PING/PONG rounds while waiting
        await writer.put(report())
        assert await waiting == 1  # no reconnection (None) in between


async def test_the_watcher_serves_its_last_snapshot_through_an_outage(
    own_redis_server: RedisServer,
) -> None:
    url = own_redis_server.url
    async with (
        catalog(url, "out", reply_timeout=0.5) as writer,
        catalog(url, "out", reply_timeout=0.5, resubscribe_max=0.2) as reader,
    ):
        await writer.put(report("a"))
        watcher = CatalogWatcher(reader, poll_interval=0.1, retry_min=0.02, retry_max=0.2)
        async with watcher:
            before = await asyncio.wait_for(watcher.wait_loaded(), 1)
            own_redis_server.stop()
            await wait_until(lambda: watcher.last_error is not None, 2)
            assert watcher.current is before and watcher.loaded
            own_redis_server.start()
            await writer.put(report("b"))
            await wait_until(lambda: set(watcher.current.reports) == {"b"}, 3)
            assert watcher.last_error is None


async def test_the_watcher_follows_notifications_again_after_a_restart(
    own_redis_server: RedisServer,
) -> None:
    url = own_redis_server.url
    async with (
        catalog(url, "resync", reply_timeout=0.5) as writer,
        catalog(url, "resync", reply_timeout=0.5, resubscribe_max=0.2) as reader,
    ):
        await writer.put(report("a"))
        async with CatalogWatcher(reader, poll_interval=60) as watcher:  # no polling: only pub/sub
            await asyncio.wait_for(watcher.wait_loaded(), 1)
            own_redis_server.stop()
            await asyncio.sleep(0.1)
            own_redis_server.start()
            await writer.put(report("b"))
            await wait_until(lambda: set(watcher.current.reports) == {"b"}, 3)
            await writer.put(report("c"))
            await wait_until(lambda: set(watcher.current.reports) == {"b", "c"}, 1)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b'[7, "a", "b"]', (7, ("a", "b"))),
        (b"[7]", (7, ())),
        (b"7", (7, ())),
        (b"not json", None),
        (b"[]", None),
        (b"[true]", None),
        (b'["7", "a"]', None),
        (b'[7, "a", 3]', None),
        (b"{}", None),
        (None, None),
    ],
)
def test_change_messages_are_read_strictly(message: object, expected: object) -> None:
    assert announcement(message) == expected


async def test_a_thousand_writers_at_once_queue_instead_of_failing(
    redis_server: RedisServer,
) -> None:
    async with catalog(redis_server.url, "crowd") as store:
        await asyncio.gather(*(store.put(report(f"c{n:04d}")) for n in range(1000)))
        assert len((await store.snapshot()).reports) == 1000


async def test_a_listening_reader_keeps_reading_only_changes_while_writes_go_on(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    async with catalog(url, "busy") as writer, catalog(url, "busy") as reader:
        for n in range(30):
            await writer.put(report(f"c{n:02d}"))
        async with CatalogWatcher(reader, poll_interval=0.05, min_interval=0.0) as watcher:
            await asyncio.wait_for(watcher.wait_loaded(), 2)
            whole = reader.reads.whole
            for step in range(300):  # reads keep landing amid writes still in flight
                await writer.put(report(f"c{step % 30:02d}", tag=str(step)))
            await wait_until(lambda: watcher.current.reports["c29"] == report("c29", tag="299"), 3)
            assert reader.reads.whole == whole and reader.reads.whole_after_gap == 0
        async with catalog(url, "busy") as fresh:
            assert (await fresh.snapshot()).reports == (await reader.snapshot()).reports


async def test_reading_everything_asks_for_reports_in_bounded_chunks(
    redis_server: RedisServer, raw: Redis
) -> None:
    async with catalog(redis_server.url, "chunks") as store:
        for n in range(250):
            await store.put(report(f"c{n:03d}"))
        await raw.config_resetstat()
        assert len((await store.snapshot()).reports) == 250
        stats = await raw.info("commandstats")
        assert "cmdstat_hgetall" not in stats or stats["cmdstat_hgetall"]["calls"] <= 2
        assert stats["cmdstat_hmget"]["calls"] == 3  # 100 + 100 + 50 reports


async def test_a_reader_on_a_busy_event_loop_keeps_up_with_a_burst_of_changes(
    redis_server: RedisServer,
) -> None:
    """A hub starting a thousand collectors turns its event loop slowly; the reader
    must still take in the announcements as fast as they come, not one per turn."""

    async def hog_the_loop() -> None:
        while True:
            time.sleep(0.02)  # noqa: ASYNC251  # every turn of the loop takes this long
            await asyncio.sleep(0)

    url = redis_server.url
    async with (
        catalog(url, "burst") as writer,
        catalog(url, "burst", resync_after=600) as reader,
        CatalogWatcher(reader, min_interval=0.0) as watcher,
    ):
        await asyncio.wait_for(watcher.wait_loaded(), 2)
        hog = asyncio.create_task(hog_the_loop())
        try:
            await asyncio.gather(*(writer.put(report(f"c{n:03d}")) for n in range(300)))
            # One announcement a turn would take 300 turns, six seconds.
            await wait_until(lambda: len(watcher.current.reports) == 300, 2)
        finally:
            hog.cancel()
