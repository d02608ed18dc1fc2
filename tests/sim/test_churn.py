"""The seeded churn: same seed, same changes; its rate; its bound on outages; the CLI."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mcobs.sim import Churn, SimCluster, SimFleet, add_sim_routes
from mcobs.sim.__main__ import build_parser, make_churn
from mcobs.sim.churn import Change, default_max_down
from tests.sim.helpers import eventually
from tests.sim.test_faults import _refused

DETAIL = re.compile(r"^(?P<ns>[^/]+)/(?P<name>\S+) ready (?P<old>\d+)->(?P<new>\d+) of (\d+)$")


class FakeTime:
    """A clock that `sleep` moves forward at once."""

    def __init__(self, now: float = 1000.0) -> None:
        self.start = self.now = now

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        assert delay >= 0
        self.now += delay
        await asyncio.sleep(0)


def _churn(fleet: SimFleet, fake: FakeTime, seed: int = 7, **settings: Any) -> Churn:
    return Churn(fleet, random.Random(seed), clock=fake.clock, sleep=fake.sleep, **settings)


async def _changes(seed: int) -> tuple[list[Change], list[dict[str, Any]]]:
    fleet = SimFleet.default(clusters=20)
    churn = _churn(fleet, FakeTime(), seed, rate=10.0, cluster_share=0.3, outage=2.0, limit=200)
    await churn.run()
    return list(churn.recent), fleet.describe()


async def test_the_same_seed_gives_the_same_changes() -> None:
    first, first_state = await _changes(seed=7)
    again, again_state = await _changes(seed=7)
    other, _ = await _changes(seed=8)

    assert first == again
    assert first_state == again_state
    assert first != other
    assert {c.kind for c in first} == {"endpoints", "down", "up"}


async def test_changes_follow_the_rate() -> None:
    fake = FakeTime()
    churn = _churn(SimFleet.default(clusters=5), fake, rate=4.0, cluster_share=0.5, limit=40)

    await churn.run()

    scheduled = [c.time - fake.start for c in churn.recent if c.kind != "up"]
    assert scheduled == [k / 4.0 for k in range(40)]
    assert {c.kind for c in churn.recent} == {"endpoints", "down", "up"}
    assert churn.applied == 40


async def test_never_more_than_max_down_and_every_outage_ends() -> None:
    fleet = SimFleet.default(clusters=50)
    fake = FakeTime()
    down_counts: list[int] = []

    async def sleep(delay: float) -> None:
        down_counts.append(sum(c.gate.mode != "up" for c in fleet.clusters))
        await fake.sleep(delay)

    churn = Churn(
        fleet,
        random.Random(3),
        rate=10.0,
        cluster_share=1.0,
        outage=2.0,
        max_down=3,
        limit=100,
        clock=fake.clock,
        sleep=sleep,
    )
    await churn.run()

    assert max(down_counts) == 3
    downs = {(c.cluster, c.time) for c in churn.recent if c.kind == "down"}
    ups = {(c.cluster, c.time - 2.0) for c in churn.recent if c.kind == "up"}
    assert downs == ups
    assert churn.applied == 100  # an outage that cannot start is an endpoint change instead
    assert churn.down == []
    assert all(c.gate.mode == "up" for c in fleet.clusters)


def test_the_default_bound_is_one_percent_of_the_fleet_and_at_least_one() -> None:
    assert [default_max_down(n) for n in (1, 3, 199, 200, 1000)] == [1, 1, 1, 2, 10]
    assert Churn(SimFleet.default(clusters=3), random.Random(), rate=1.0).max_down == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate": 0.0}, "rate: 0.0 is not a positive number"),
        ({"rate": float("nan")}, "rate: nan"),
        ({"rate": 1.0, "cluster_share": 1.5}, "cluster_share: 1.5 is not in 0..1"),
        ({"rate": 1.0, "outage": 0.0}, "outage: 0.0 is not a positive number"),
        ({"rate": 1.0, "max_down": 0}, "max_down: 0 is less than 1"),
        ({"rate": 1.0, "limit": -1}, "limit: -1 is negative"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Churn(SimFleet.default(clusters=1), random.Random(), **settings)


@pytest.fixture
async def http(fleet: SimFleet) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=fleet.client_ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def _ready_counts(http: aiohttp.ClientSession, cluster: SimCluster) -> dict[str, int]:
    path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    headers = {"Authorization": f"Bearer {cluster.token}"}
    async with http.get(f"{cluster.kube_url}{path}", headers=headers) as resp:
        assert resp.status == 200
        body = await resp.json()
    return {
        item["metadata"]["labels"]["kubernetes.io/service-name"]: sum(
            e["conditions"]["ready"] for e in item["endpoints"]
        )
        for item in body["items"]
    }


async def test_endpoint_changes_are_served_by_the_kubernetes_api(
    fleet: SimFleet, http: aiohttp.ClientSession
) -> None:
    before = {c.name: c.kube.resource_version for c in fleet.clusters}
    churn = _churn(fleet, FakeTime(), rate=100.0, cluster_share=0.0, limit=12)

    await churn.run()

    expected = {(c.name, "web"): 3 for c in fleet.clusters}
    expected |= {(c.name, "api"): 3 for c in fleet.clusters}
    for change in churn.recent:
        match = DETAIL.match(change.detail)
        assert change.kind == "endpoints" and match is not None
        assert int(match["old"]) == expected[change.cluster, match["name"]] != int(match["new"])
        expected[change.cluster, match["name"]] = int(match["new"])
    for cluster in fleet.clusters:
        served = await _ready_counts(http, cluster)
        assert served == {name: expected[cluster.name, name] for name in ("web", "api")}
    assert sum(c.kube.resource_version - before[c.name] for c in fleet.clusters) == 12


async def test_an_outage_refuses_connections_and_ends_after_its_duration(
    fleet: SimFleet,
) -> None:
    churn = Churn(fleet, random.Random(1), rate=10.0, cluster_share=1.0, outage=0.2, limit=1)
    run = asyncio.create_task(churn.run())

    await eventually(lambda: bool(churn.down))
    (name,) = churn.down
    assert await _refused(fleet.cluster(name).kube_port)
    await run

    assert [c.kind for c in churn.recent] == ["down", "up"]
    assert churn.recent[1].time - churn.recent[0].time >= 0.19
    assert not await _refused(fleet.cluster(name).kube_port)


async def test_cancelling_ends_every_outage_at_once(fleet: SimFleet) -> None:
    churn = Churn(fleet, random.Random(1), rate=10.0, cluster_share=1.0, outage=600.0)
    run = asyncio.create_task(churn.run())
    await eventually(lambda: bool(churn.down))

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    assert churn.down == []
    assert all(c.gate.mode == "up" for c in fleet.clusters)
    assert churn.recent[-1].kind == "up"


async def test_the_control_api_lists_the_churn(fleet: SimFleet) -> None:
    churn = _churn(fleet, FakeTime(), seed=5, rate=2.0, limit=3)
    await churn.run()
    app = web.Application()
    add_sim_routes(app, fleet, churn)

    async with TestClient(TestServer(app)) as client, client.get("/api/v1/sim/churn") as resp:
        assert resp.status == 200
        body = await resp.json()

    assert (body["rate"], body["seed"], body["applied"], body["down"]) == (2.0, None, 3, [])
    assert body["recent"] == [c._asdict() for c in churn.recent]
    assert set(body["recent"][0]) == {"time", "kind", "cluster", "detail"}


async def test_without_a_churn_there_is_no_churn_route(fleet: SimFleet) -> None:
    app = web.Application()
    add_sim_routes(app, fleet)

    async with TestClient(TestServer(app)) as client, client.get("/api/v1/sim/churn") as resp:
        assert resp.status == 404


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--churn-rate", "-1"], "argument --churn-rate: must be at least 0, got -1"),
        (["--churn-rate", "fast"], "argument --churn-rate: must be a number, got 'fast'"),
        (["--churn-rate", "inf"], "argument --churn-rate: must be a finite number"),
        (["--churn-outage", "0"], "argument --churn-outage: must be more than 0, got 0"),
        (["--churn-cluster-share", "1.5"], "--churn-cluster-share: must be between 0 and 1"),
        (["--churn-seed", "x"], "argument --churn-seed: invalid int value: 'x'"),
    ],
)
def test_the_cli_refuses_bad_churn_values(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--kubeconfig", "k", *args])

    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_cli_churns_only_when_asked() -> None:
    fleet = SimFleet.default(clusters=3)
    parse = build_parser().parse_args

    assert make_churn(fleet, parse(["--kubeconfig", "k"])) is None
    args = ["--kubeconfig", "k", "--churn-rate", "5", "--churn-seed", "9"]
    args += ["--churn-outage", "1.5", "--churn-cluster-share", "0.25"]
    churn = make_churn(fleet, parse(args))
    assert churn is not None
    assert (churn.rate, churn.seed, churn.outage, churn.cluster_share) == (5.0, 9, 1.5, 0.25)


async def test_the_process_serves_its_churn(tmp_path: Path) -> None:
    sim = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "mcobs.sim", "--clusters", "2"],
        *["--kubeconfig", str(tmp_path / "kubeconfig"), "--churn-rate", "50"],
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert sim.stdout is not None
        control = json.loads(await asyncio.wait_for(sim.stdout.readline(), 30))["control"]
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                async with http.get(f"{control}/api/v1/sim/churn") as resp:
                    body = await resp.json()
                if body["applied"] >= 5:
                    break
                await asyncio.sleep(0.02)
        assert (body["rate"], body["seed"]) == (50.0, 0)
        assert body["applied"] >= 5
    finally:
        sim.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(sim.wait(), 30) == 0
