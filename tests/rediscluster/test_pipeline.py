"""The end-to-end checks of tests/e2e/test_pipeline.py with every store on a Redis Cluster or
behind Sentinel, and a master failover mid-run.

Two hubs share the catalog: a leader that collects (and holds the decision
lease, logs decisions, keeps the webhook outbox, as `mcobs serve` does) and a
replica that only follows change notifications. A cluster goes down; while
the master that holds the catalog dies and its replica is promoted, both hubs
keep answering DNS from memory; afterwards the catalog takes writes again (the
recovery shows), notifications reach the replica again (within a second of
the leader), a later outage still changes the answers, and the leader records
that decision in the event log.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from mcobs.catalog.redis import RedisCatalog
from mcobs.config import Settings
from mcobs.decide.events import EventQuery, RedisEventLog, connect
from mcobs.decide.lease import RedisLease
from mcobs.hub import Hub
from mcobs.notify.redis import RedisOutboxStore
from mcobs.sim.fleet import SimFleet
from tests.e2e.test_pipeline import WEB, addresses, eventually, lb_address
from tests.redis_cluster import RedisClusterServers, RedisSentinelServers

pytestmark = pytest.mark.slow

_prefixes = itertools.count()


async def _through_a_failover(
    fleet: SimFleet, settings: Settings, url: str, failover: Callable[[], tuple[int, int]]
) -> None:
    prefix = f"pipeline{next(_prefixes)}"
    collecting = RedisCatalog.from_url(url, prefix=prefix, timeout=1.0)
    following = RedisCatalog.from_url(url, prefix=prefix, timeout=1.0, resubscribe_max=1.0)
    outbox = RedisOutboxStore.from_url(url, prefix=prefix, timeout=1.0)
    decide_client = connect(url, timeout=2.0)
    lease = RedisLease(decide_client, prefix=prefix, ttl=3.0)
    events = RedisEventLog(decide_client, prefix=prefix)
    everyone = {lb_address(fleet, c) for c in fleet.names}
    us_east, eu_west = lb_address(fleet, "us-east"), lb_address(fleet, "eu-west")
    try:
        async with (
            Hub(settings, collecting, outbox_store=outbox, lease=lease, events=events) as leader,
            Hub(settings, following, collect=False) as replica,
        ):
            ports = (leader.dns_port, replica.dns_port)

            def answers_are(expected: set[str], *which: int) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    for port in which or ports:
                        if await addresses(port, WEB) != expected:
                            return False
                    return True

                return check

            await eventually(answers_are(everyone))
            await fleet.outage("us-east")
            await eventually(answers_are(everyone - {us_east}))

            # The master that holds the catalog dies; DNS answers throughout.
            failing = asyncio.ensure_future(asyncio.to_thread(failover))
            asked = 0
            while not failing.done():
                for port in ports:
                    assert await addresses(port, WEB) == everyone - {us_east}
                    asked += 1
                await asyncio.sleep(0.05)
            old, new = await failing
            assert old != new and asked > 10
            promoted = datetime.now(UTC)

            # The catalog takes writes again, and notifications reach the replica again:
            # it follows the leader within a second.
            await fleet.recover("us-east")
            await eventually(answers_are(everyone, leader.dns_port))
            lag = await eventually(answers_are(everyone, replica.dns_port), limit=1.0)
            assert lag < 1.0
            # A later outage still changes the answers.
            await fleet.outage("eu-west")
            await eventually(answers_are(everyone - {eu_west}))

            # The leader recorded the outage after the failover.
            async def decided() -> bool:
                query = EventQuery(
                    types=frozenset({"cluster.state_changed"}), cluster="eu-west", since=promoted
                )
                page = await events.read(query)
                return any(e.event.data.get("to") == "down" for e in page.events)

            await eventually(decided, limit=10)
    finally:
        await collecting.close()
        await following.close()
        await outbox.close()
        await events.close()
        await decide_client.aclose()


async def test_the_pipeline_on_a_redis_cluster_through_a_master_failover(
    fleet: SimFleet, settings: Settings, cluster_after_failover: RedisClusterServers
) -> None:
    cluster = cluster_after_failover
    key = "mcobs:{catalog}:reports"  # every prefix shares the {catalog} slot
    await _through_a_failover(fleet, settings, cluster.url, lambda: cluster.kill_master_of(key))


async def test_the_pipeline_through_sentinel_when_the_master_dies(
    fleet: SimFleet, settings: Settings, sentinel_after_failover: RedisSentinelServers
) -> None:
    sentinel = sentinel_after_failover
    await _through_a_failover(fleet, settings, sentinel.url, sentinel.kill_master)
