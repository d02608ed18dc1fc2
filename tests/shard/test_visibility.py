"""What an operator sees of sharding and leadership: `GET /api/v1/shard` and the gauges
`mcobs_shard_owned_clusters`, `mcobs_shard_members` and `mcobs_decider_leader`.

Two hubs over one redis-server split four simulated clusters: their answers together
name every cluster once, each one's `/metrics` agrees with its answer, and exactly one
of them decides; when one stops, the other says it collects everything and decides.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from mcobs.catalog.memory import MemoryCatalog
from mcobs.catalog.redis import RedisCatalog
from mcobs.cli import demo_settings
from mcobs.config import Settings
from mcobs.decide.events import MemoryEventLog, RedisEventLog
from mcobs.decide.lease import LeaseBoard, MemoryLease, RedisLease
from mcobs.hub import Hub
from mcobs.redisconn import connect
from mcobs.shard.manager import ShardManager
from mcobs.shard.routes import ShardView, shard_routes
from mcobs.sim.fleet import SimFleet
from tests.e2e.test_pipeline import eventually
from tests.redis_server import RedisServer
from tests.shard.conftest import Group

TTL = 1.0
"""Shard and decision leases: a stopped replica's share moves within a third of this."""
LIMIT = 10.0
GAUGES = ("mcobs_shard_owned_clusters", "mcobs_shard_members", "mcobs_decider_leader")
TOKEN = "visibility-token"

_prefixes = itertools.count()


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=4) as running:
        yield running


@pytest.fixture
def settings(fleet: SimFleet, tmp_path: Path) -> Settings:
    return demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)


class Replica:
    """One `mcobs serve` with sharding on, in this process: its own Redis clients."""

    def __init__(self, name: str, settings: Settings, url: str, prefix: str) -> None:
        self.name = name
        self._settings = settings
        self._url = url
        self._prefix = prefix
        self._stack = contextlib.AsyncExitStack()
        self.hub: Hub | None = None

    async def start(self) -> None:
        stack, prefix = self._stack, self._prefix
        client = connect(self._url)
        stack.push_async_callback(client.aclose)
        store = RedisCatalog.from_url(self._url, prefix=prefix)
        stack.push_async_callback(store.close)
        events = RedisEventLog(client, prefix=prefix)
        stack.push_async_callback(events.close)
        names = [c.name for c in self._settings.clusters]
        self.hub = await stack.enter_async_context(
            Hub(
                self._settings,
                store,
                lease=RedisLease(client, prefix=prefix, holder=self.name, ttl=TTL),
                events=events,
                shard=ShardManager(client, self.name, names, ttl=TTL, prefix=prefix),
            )
        )

    async def stop(self) -> None:
        self.hub = None
        await self._stack.aclose()

    @property
    def base(self) -> str:
        assert self.hub is not None
        return f"http://127.0.0.1:{self.hub.http_port}"


async def get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> Any:
    async with http.get(url, **kwargs) as response:
        assert response.status == 200, (url, response.status)
        return await response.json()


async def gauges(http: aiohttp.ClientSession, base: str, **kwargs: Any) -> dict[str, float]:
    async with http.get(base + "/metrics", **kwargs) as response:
        assert response.status == 200
        text = await response.text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in GAUGES
    }


async def test_two_replicas_name_every_cluster_once_and_one_decides(
    fleet: SimFleet, settings: Settings, redis_server: RedisServer
) -> None:
    prefix = f"visible{next(_prefixes)}"
    replicas = [Replica(name, settings, redis_server.url, prefix) for name in ("hub-a", "hub-b")]
    everything = sorted(fleet.names)
    answers: dict[str, Any] = {}
    seen: dict[str, dict[str, float]] = {}

    async def look(live: list[Replica]) -> None:
        for replica in live:
            answers[replica.name] = await get_json(http, replica.base + "/api/v1/shard")
            seen[replica.name] = await gauges(http, replica.base)

    async def settled(live: list[Replica]) -> bool:
        await look(live)
        names = sorted(r.name for r in live)
        collected = [c for r in live for c in answers[r.name]["clusters"]]
        return (
            all(answers[r.name]["members"] == names for r in live)
            and not any(answers[r.name]["waiting_for"] for r in live)
            and sorted(collected) == everything
            and sum(seen[r.name]["mcobs_decider_leader"] for r in live) == 1
        )

    try:
        async with aiohttp.ClientSession() as http:
            for replica in replicas:
                await replica.start()
            await eventually(lambda: settled(replicas), LIMIT)
            for replica in replicas:
                answer = answers[replica.name]
                assert answer["replica"] == replica.name and answer["sharded"] is True
                assert answer["clusters"] == sorted(answer["clusters"])
                assert answer["configured_clusters"] == len(everything)
                assert answer["lease_ttl_seconds"] == TTL
                assert 0 <= answer["renewal_age_seconds"] < TTL
                assert seen[replica.name]["mcobs_shard_owned_clusters"] == len(answer["clusters"])
                assert seen[replica.name]["mcobs_shard_members"] == 2
            # Both split the work (the names are chosen so that rendezvous hashing does).
            assert all(answers[r.name]["clusters"] for r in replicas)
            leader = next(r for r in replicas if seen[r.name]["mcobs_decider_leader"] == 1)
            for replica in replicas:
                said = await get_json(http, replica.base + "/api/v1/leader")
                assert said["leader"]["holder"] == leader.name

            # The leader stops: the other collects everything and decides.
            await leader.stop()
            survivor = next(r for r in replicas if r is not leader)
            await eventually(lambda: settled([survivor]), LIMIT)
            assert answers[survivor.name]["clusters"] == everything
            assert answers[survivor.name]["members"] == [survivor.name]
            assert seen[survivor.name] == {
                "mcobs_shard_owned_clusters": len(everything),
                "mcobs_shard_members": 1,
                "mcobs_decider_leader": 1,
            }
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_hub_without_sharding_collects_every_cluster_and_says_so(
    fleet: SimFleet, settings: Settings
) -> None:
    """The demo's setup (embedded catalog, in-memory lease), with reads protected."""
    protected = settings.model_copy(
        update={"http": settings.http.model_copy(update={"protect_reads": True})}
    )
    board = LeaseBoard()
    events = MemoryEventLog(board)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with (
            Hub(
                protected,
                MemoryCatalog(),
                token=TOKEN,
                lease=MemoryLease(board, holder="demo"),
                events=events,
            ) as hub,
            aiohttp.ClientSession() as http,
        ):
            url = f"http://127.0.0.1:{hub.http_port}/api/v1/shard"
            async with http.get(url) as refused:
                assert refused.status == 401
            assert await get_json(http, url, headers=auth) == {
                "replica": "demo",
                "sharded": False,
                "members": ["demo"],
                "clusters": sorted(fleet.names),
                "waiting_for": [],
                "configured_clusters": len(fleet.names),
                "lease_ttl_seconds": None,
                "renewal_age_seconds": None,
            }
            base = f"http://127.0.0.1:{hub.http_port}"

            async def leading() -> bool:
                return (await gauges(http, base))["mcobs_decider_leader"] == 1

            await eventually(leading, LIMIT)
            assert await gauges(http, base) == {
                "mcobs_shard_owned_clusters": len(fleet.names),
                "mcobs_shard_members": 1,
                "mcobs_decider_leader": 1,
            }
    finally:
        await events.close()


async def test_the_renewal_age_is_read_on_the_managers_clock(group: Group) -> None:
    a, b = group.add("a"), group.add("b")
    await group.settle([a, b])
    app = web.Application()
    app.add_routes(shard_routes(lambda: ShardView.of(a)))
    async with TestClient(TestServer(app)) as client:

        async def age() -> Any:
            return (await (await client.get("/api/v1/shard")).json())["renewal_age_seconds"]

        assert await age() == 0
        group.clock.advance(2.5)
        assert await age() == 2.5
        await a.step()
        assert await age() == 0
