"""Sharded collection end to end: three replicas split six simulated clusters and write one
Redis catalog; a hub that only follows the catalog answers DNS. A replica that stops and one
that dies hand their clusters over within the lease time, and the answers stay whole."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from mcobs.catalog.redis import RedisCatalog
from mcobs.cli import demo_settings
from mcobs.collect.cluster import ClusterCollector
from mcobs.collect.kubeapi import new_session
from mcobs.config import Settings
from mcobs.hub import Hub, build_collectors
from mcobs.redisconn import connect
from mcobs.shard.manager import ShardManager
from mcobs.shard.tasks import OwnedTasks
from mcobs.sim.fleet import SimFleet
from tests.e2e.test_pipeline import WEB, addresses, lb_address
from tests.redis_server import RedisServer

TTL = 2.0
T = TypeVar("T")


class Replica:
    """What a sharded hub does: a ShardManager whose on_change starts and stops collectors."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        url: str,
        prefix: str,
        session: aiohttp.ClientSession,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.client = connect(url)
        self.store = RedisCatalog.from_url(url, prefix=prefix)
        self.closers: list[Callable[[], None]] = []

        def start(cluster: str) -> ClusterCollector | None:
            chosen = tuple(c for c in settings.clusters if c.name == cluster)
            if not chosen:
                return None
            one = settings.model_copy(update={"clusters": chosen})
            built = build_collectors(one, self.store, session, executor, time.time, self.closers)
            return built[0]

        self.collectors = OwnedTasks(start)
        self.manager = ShardManager(
            self.client,
            name,
            [c.name for c in settings.clusters],
            ttl=TTL,
            prefix=prefix,
            on_change=self.collectors.update,
        )
        self.task = asyncio.create_task(self.manager.run(), name=f"shard {name}")

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.collectors.stop()

    async def kill(self) -> None:
        """The process dies: its collectors stop, and no goodbye reaches Redis."""

        async def no_goodbye() -> None:
            return None

        self.manager.leave = no_goodbye  # type: ignore[method-assign]
        await self.stop()

    async def close(self) -> None:
        await self.stop()
        closers, self.closers = self.closers, []
        for close in closers:
            close()
        await self.store.close()
        await self.client.aclose()


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=6) as running:
        yield running


async def test_replicas_share_the_clusters_and_answers_stay_whole_through_handovers(
    fleet: SimFleet, tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)
    prefix = f"sharded{time.monotonic_ns()}"
    everyone = {lb_address(fleet, c) for c in fleet.names}
    session = new_session()
    executor = ThreadPoolExecutor(max_workers=4)
    reader = RedisCatalog.from_url(redis_server.url, prefix=prefix)
    replicas = {
        name: Replica(name, settings, redis_server.url, prefix, session, executor)
        for name in ("a", "b", "c")  # 2 clusters each
    }
    try:
        async with Hub(settings, reader, collect=False) as hub:

            async def settled(live: list[Replica]) -> bool:
                owned = [r.manager.owned for r in live]
                running = [set(r.collectors.running) for r in live]
                names = tuple(sorted(r.manager.replica_id for r in live))
                return (
                    all(r.manager.members == names and not r.manager.waiting_for for r in live)
                    and sum(map(len, owned)) == len(fleet.names)
                    and frozenset().union(*owned) == set(fleet.names)
                    and running == [set(o) for o in owned]
                )

            async def answers_whole_until(
                done: Callable[[], Awaitable[bool]], limit: float
            ) -> float:
                """Ask DNS every 50 ms until `done`; every answer must name every cluster."""
                started = time.monotonic()
                while not await done():
                    assert await addresses(hub.dns_port, WEB) == everyone
                    assert time.monotonic() - started < limit, "not settled in time"
                    await asyncio.sleep(0.05)
                return time.monotonic() - started

            live = list(replicas.values())
            started = time.monotonic()
            while not (await settled(live) and await addresses(hub.dns_port, WEB) == everyone):
                assert time.monotonic() - started < 15
                await asyncio.sleep(0.1)
            assert all(r.manager.owned for r in live)  # 6 clusters: everyone collects some

            # A replica stops: the others take its clusters at their next step.
            leaving = max(live, key=lambda r: len(r.manager.owned))
            moved = leaving.manager.owned
            await leaving.stop()
            live.remove(leaving)
            took = await answers_whole_until(lambda: settled(live), limit=TTL)
            assert took < TTL
            # ...and collect them: an outage of a moved cluster still changes the answer.
            cluster = sorted(moved)[0]
            gone = lb_address(fleet, cluster)
            await fleet.outage(cluster)
            started = time.monotonic()
            while await addresses(hub.dns_port, WEB) != everyone - {gone}:
                assert time.monotonic() - started < 10
                await asyncio.sleep(0.05)
            await fleet.recover(cluster)
            started = time.monotonic()
            while await addresses(hub.dns_port, WEB) != everyone:
                assert time.monotonic() - started < 15
                await asyncio.sleep(0.05)

            # A replica dies: its leases run out and the survivor takes over.
            dying = live[0]
            await dying.kill()
            live.remove(dying)
            took = await answers_whole_until(lambda: settled(live), limit=TTL * 2)
            assert took < TTL * 2
            for replica in replicas.values():
                await replica.close()
    finally:
        for replica in replicas.values():
            await replica.close()
        await reader.close()
        await session.close()
        executor.shutdown(wait=False, cancel_futures=True)


async def test_a_hub_drops_the_series_of_clusters_it_hands_over(
    fleet: SimFleet, tmp_path: Path, redis_server: RedisServer
) -> None:
    """Once another replica collects a cluster, this one's sweep series would mislead."""
    settings = demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)
    prefix = f"forget{time.monotonic_ns()}"
    names = list(fleet.names)
    store = RedisCatalog.from_url(redis_server.url, prefix=prefix)
    clients = [connect(redis_server.url), connect(redis_server.url)]
    mine = ShardManager(clients[0], "mine", names, ttl=TTL, prefix=prefix)
    other = ShardManager(clients[1], "other", names, ttl=TTL, prefix=prefix)
    joined: asyncio.Task[None] | None = None

    def swept(hub: Hub) -> set[str]:
        return {
            c
            for c in names
            if hub.registry.get_sample_value("mcobs_collector_last_sweep_seconds", {"cluster": c})
            is not None
        }

    try:
        async with Hub(settings, store, shard=mine) as hub:
            for _ in range(150):
                if swept(hub) == set(names):
                    break
                await asyncio.sleep(0.1)
            assert swept(hub) == set(names)
            joined = asyncio.create_task(other.run())
            for _ in range(150):
                if mine.owned and swept(hub) == set(mine.owned) and len(mine.owned) < len(names):
                    break
                await asyncio.sleep(0.1)
            assert 0 < len(mine.owned) < len(names)
            assert swept(hub) == set(mine.owned)
    finally:
        if joined is not None:
            joined.cancel()
            await asyncio.gather(joined, return_exceptions=True)
        await store.close()
        for client in clients:
            await client.aclose()
