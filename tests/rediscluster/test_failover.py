"""The catalog on a Redis Cluster and through Sentinel: one slot per store, sharded change
notifications, and a master failover under a writer and a watcher."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from mcobs.catalog.redis import CatalogKeys, RedisCatalog
from mcobs.catalog.store import CatalogUnavailable, CatalogWatcher
from mcobs.decide.keys import DecideKeys
from mcobs.notify.redis import OutboxKeys
from tests.catalog.builders import report
from tests.catalog.helpers import next_change, wait_until
from tests.redis_cluster import RedisClusterServers, RedisSentinelServers

_prefixes = itertools.count()


def test_each_store_keeps_its_keys_and_channel_in_one_slot() -> None:
    catalog = CatalogKeys.for_prefix("mcobs")
    decide = DecideKeys.for_prefix("mcobs")
    outbox = OutboxKeys.for_prefix("mcobs")
    groups = [
        [catalog.reports, catalog.version, catalog.expiry, catalog.overrides, catalog.channel],
        [decide.lease, decide.token, decide.events, decide.facts],
        [outbox.deliveries, outbox.leases, outbox.dead, outbox.due("a"), outbox.due("b/c")],
    ]
    for keys in groups:
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
    # Another prefix (another hub on the same Redis) shares the slot: the tag is the store.
    other = CatalogKeys.for_prefix("other")
    assert key_slot(other.reports.encode()) == key_slot(catalog.reports.encode())


async def test_changes_are_announced_on_the_catalog_slots_shard(
    redis_cluster: RedisClusterServers,
) -> None:
    store = RedisCatalog.from_url(redis_cluster.url, prefix=f"shard{next(_prefixes)}")
    owner = redis_cluster.master_of(store.keys.channel)
    elsewhere = next(p for p in redis_cluster.live_masters() if p != owner)
    plain = Redis(port=elsewhere)
    pubsub = plain.pubsub()
    try:
        await pubsub.subscribe(store.keys.channel)  # a cluster-wide PUBLISH would reach it
        assert (await pubsub.get_message(timeout=1) or {}).get("type") == "subscribe"
        async with contextlib.aclosing(store.subscribe()) as changes:
            assert await next_change(changes, 3) is None
            await store.put(report("a"))
            assert await next_change(changes, 3) == (await store.snapshot()).version
        assert await pubsub.get_message(timeout=0.3) is None  # SPUBLISH stays on its shard
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await plain.aclose()
        await store.close()


async def _put_until_it_works(store: RedisCatalog, cluster: str, within: float) -> float:
    """Seconds until a put succeeds (each failure is a quick `CatalogUnavailable`)."""
    started = time.monotonic()
    while True:
        try:
            await store.put(report(cluster))
            return time.monotonic() - started
        except CatalogUnavailable:
            if time.monotonic() - started > within:
                raise
            await asyncio.sleep(0.1)


async def _watch_through(failover: Callable[[], tuple[int, int]], url: str) -> None:
    prefix = f"failover{next(_prefixes)}"
    writer = RedisCatalog.from_url(url, prefix=prefix, timeout=1.0)
    reader = RedisCatalog.from_url(url, prefix=prefix, timeout=1.0, resubscribe_max=0.5)
    try:
        await writer.put(report("before"))
        # A 60 s poll: within the test only a change notification can bring news.
        async with CatalogWatcher(reader, poll_interval=60, retry_max=0.5) as watcher:
            await asyncio.wait_for(watcher.wait_loaded(), 5)
            await writer.put(report("still-before"))
            await wait_until(lambda: set(watcher.current.reports) == {"before", "still-before"})
            old, new = await asyncio.to_thread(failover)
            assert old != new
            # Bounds for a loaded 2-core machine; a failover itself takes about 4 s here.
            assert await _put_until_it_works(writer, "after", within=15) < 15
            await wait_until(lambda: "after" in watcher.current.reports, within=15)
            assert set(watcher.current.reports) == {"before", "still-before", "after"}
            # Notifications are live again: the next change arrives at once.
            await writer.put(report("later"))
            await wait_until(lambda: "later" in watcher.current.reports, within=1)
    finally:
        await writer.close()
        await reader.close()


@pytest.mark.slow
async def test_the_catalog_follows_a_cluster_master_failover(
    cluster_after_failover: RedisClusterServers,
) -> None:
    cluster = cluster_after_failover
    keys = CatalogKeys.for_prefix("any")
    await _watch_through(lambda: cluster.kill_master_of(keys.reports), cluster.url)


@pytest.mark.slow
async def test_the_catalog_follows_a_sentinel_failover(
    sentinel_after_failover: RedisSentinelServers,
) -> None:
    sentinel = sentinel_after_failover
    await _watch_through(sentinel.failover, sentinel.url)


@pytest.mark.slow
async def test_the_catalog_follows_a_planned_cluster_failover(
    cluster_after_failover: RedisClusterServers,
) -> None:
    # The old master lives on as a replica: it ends our shard subscription (sunsubscribe)
    # instead of dropping the connection.
    cluster = cluster_after_failover
    keys = CatalogKeys.for_prefix("any")
    await _watch_through(lambda: cluster.fail_over_gracefully(keys.reports), cluster.url)
