"""Sharded collection on a Redis Cluster: the leases live in one slot and survive a failover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mcobs.shard.assign import assign
from mcobs.shard.manager import ShardKeys
from tests.redis_cluster import RedisClusterServers
from tests.shard.conftest import CLUSTERS, Group


@pytest.fixture
async def cluster_group(cluster_after_failover: RedisClusterServers) -> AsyncIterator[Group]:
    made = Group(cluster_after_failover.url, ttl=10.0)
    yield made
    await made.close()


@pytest.mark.slow
async def test_replicas_keep_their_shares_through_a_master_failover(
    cluster_group: Group, cluster_after_failover: RedisClusterServers
) -> None:
    group, cluster = cluster_group, cluster_after_failover
    a, b, c = group.add("a"), group.add("b"), group.add("c")
    await group.settle([a, b, c])
    expected = assign(CLUSTERS, ["a", "b", "c"])
    assert group.owners([a, b, c]) == expected

    shard_key = ShardKeys.for_prefix(group.prefix).members
    failing = asyncio.ensure_future(asyncio.to_thread(cluster.kill_master_of, shard_key))
    while not failing.done():  # renewals fail for a while; nobody gives up within the ttl
        for manager in (a, b, c):
            await manager.step()
        group.assert_no_overlap()
        await asyncio.sleep(0.2)
    await failing
    # The promoted replica has the members and the leases: renewals go on, nothing moves.
    for manager in (a, b, c):
        await manager.step()
    assert group.owners([a, b, c]) == expected
    assert await a.holders() == expected
    assert not any(m.waiting_for for m in (a, b, c))
