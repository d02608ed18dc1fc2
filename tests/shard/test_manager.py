"""ShardManager on a real redis-server: split, stop, death, join, and a cut-off replica."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from mcobs.redisconn import connect
from mcobs.shard.assign import assign, moved
from mcobs.shard.manager import SAFETY, ShardKeys, ShardManager
from tests.redis_server import RedisServer
from tests.shard.conftest import CLUSTERS, Group


def test_keys_share_one_slot_and_prefixes_are_checked() -> None:
    keys = ShardKeys.for_prefix("mcobs")
    assert keys.members == "mcobs:{shard}:members"
    assert keys.lease("eu-west") == "mcobs:{shard}:lease:eu-west"
    slots = {key_slot(k.encode()) for k in (keys.members, *map(keys.lease, CLUSTERS))}
    assert len(slots) == 1
    for bad in ("", "a{b", "c}"):
        with pytest.raises(ValueError, match="prefix"):
            ShardKeys.for_prefix(bad)


def test_bad_arguments_are_all_reported() -> None:
    client = Redis()
    with pytest.raises(ValueError) as caught:
        ShardManager(client, "", ["a", "a", "b{c}"], ttl=0)
    message = str(caught.value)
    for part in ("replica_id", "ttl", "unique", "braces"):
        assert part in message
    with pytest.raises(ValueError, match="renew_every"):
        ShardManager(client, "r", ["a"], ttl=3, renew_every=3)


async def test_three_replicas_split_thirty_clusters_with_no_overlap_and_no_gap(
    group: Group,
) -> None:
    a, b, c = group.add("a"), group.add("b"), group.add("c")
    rounds = await group.settle([a, b, c])
    assert rounds <= 3
    expected = assign(CLUSTERS, ["a", "b", "c"])
    assert group.owners([a, b, c]) == expected
    assert a.members == b.members == c.members == ("a", "b", "c")
    for manager in (a, b, c):  # each one owns something, and was told so
        assert manager.owned and group.changes[manager.replica_id][-1] == manager.owned
    holders = await a.holders()
    assert holders == expected
    raw = Redis.from_url(group.url)
    try:
        assert await raw.zrange(a.keys.members, 0, -1) == [b"a", b"b", b"c"]
        assert await raw.get(a.keys.lease(CLUSTERS[0])) == expected[CLUSTERS[0]].encode()
        assert 0 < await raw.pttl(a.keys.lease(CLUSTERS[0])) <= 10_000
    finally:
        await raw.aclose()


async def test_a_stopping_replica_hands_its_clusters_over_at_once(group: Group) -> None:
    a, b, c = group.add("a"), group.add("b"), group.add("c")
    await group.settle([a, b, c])
    from_c = c.owned
    await c.leave()
    assert c.owned == frozenset() and group.changes["c"][-1] == frozenset()
    # No expiry to wait for: the next step of each survivor takes its part.
    assert await group.settle([a, b]) == 1
    assert group.owners([a, b]) == assign(CLUSTERS, ["a", "b"])
    assert from_c <= a.owned | b.owned
    assert a.members == ("a", "b")


async def test_a_dead_replicas_clusters_are_taken_over_within_the_ttl(
    short_group: Group,
) -> None:
    group = short_group
    a, b, c = group.add("a"), group.add("b"), group.add("c")
    await group.settle([a, b, c])
    from_c = c.owned
    died = time.monotonic()  # c stops stepping: no heartbeat, no renewal, no release
    del group.managers["c"]  # (its last belief no longer counts in the overlap checks)
    for manager in (a, b):
        await manager.step()
        assert not manager.owned & from_c  # its leases still run: nobody steps in early
    while not from_c <= a.owned | b.owned:
        assert time.monotonic() - died < group.ttl + 0.5, "not taken over in time"
        await asyncio.sleep(0.05)
        for manager in (a, b):
            await manager.step()
            group.assert_no_overlap()
    assert time.monotonic() - died >= group.ttl * (1 - SAFETY)  # not before it expired
    assert group.owners([a, b]) == assign(CLUSTERS, ["a", "b"])
    assert a.members == ("a", "b")


async def test_a_new_replica_takes_only_its_share_and_only_from_the_others(
    group: Group,
) -> None:
    a, b = group.add("a"), group.add("b")
    await group.settle([a, b])
    before = group.owners([a, b])
    d = group.add("d")
    await group.settle([d, a, b])
    after = group.owners([a, b, d])
    changes = moved(before, after)
    assert changes and all(new == "d" for _, new in changes.values())
    assert after == assign(CLUSTERS, ["a", "b", "d"])
    assert d.owned == frozenset(changes)


async def test_a_replica_cut_off_from_redis_gives_up_before_its_leases_run_out(
    own_redis: RedisServer,
) -> None:
    group = Group(own_redis.url, ttl=10.0)
    try:
        a = group.add("a", ["x", "y"])
        assert await a.step() == {"x", "y"}
        own_redis.stop()
        assert await a.step() == {"x", "y"}  # a failed renewal: still within its claim
        assert a.next_step_in() < a.renew_every  # retried sooner
        group.clock.advance(10.0 * (1 - SAFETY))
        assert await a.step() == frozenset()
        assert group.changes["a"] == [{"x", "y"}, frozenset()]
        own_redis.start()  # empty: the leases are free again
        assert await a.step() == {"x", "y"}
    finally:
        await group.close()


async def test_run_shares_the_clusters_and_releases_on_cancel(short_group: Group) -> None:
    group = short_group
    a, b = group.add("a"), group.add("b")
    tasks = [asyncio.create_task(m.run()) for m in (a, b)]
    try:
        started = time.monotonic()
        while not (a.owned and b.owned and a.owned | b.owned == set(CLUSTERS)):
            assert time.monotonic() - started < 3
            group.assert_no_overlap()
            await asyncio.sleep(0.02)
        tasks[1].cancel()
        await asyncio.gather(tasks[1], return_exceptions=True)
        assert b.owned == frozenset() and group.changes["b"][-1] == frozenset()
        stopped = time.monotonic()
        while a.owned != set(CLUSTERS):
            assert time.monotonic() - stopped < group.ttl, "not handed over within the ttl"
            await asyncio.sleep(0.02)
        assert set((await a.holders()).values()) == {"a"}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert await a.holders() == dict.fromkeys(CLUSTERS)  # a released everything too
    client = connect(group.url)
    try:
        assert await client.exists(a.keys.members) == 0
    finally:
        await client.aclose()
