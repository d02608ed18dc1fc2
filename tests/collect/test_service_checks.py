"""Per-service health: outside-in probes and templated Prometheus signals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mcobs.catalog.memory import MemoryCatalog
from mcobs.collect.cluster import ClusterCollector, ClusterIdentity, ServiceChecks
from mcobs.collect.kubeapi import KubeApi, new_session
from mcobs.collect.prom import PrometheusSignals
from mcobs.health import HealthPolicy, Hysteresis, SignalBounds
from mcobs.model import ClusterReport, HealthState, ServiceKey
from mcobs.sim.cluster import ServiceSpec
from mcobs.sim.fleet import SimFleet
from mcobs.sim.state import Port
from tests.collect.test_collector import kube_api, until
from tests.redis_server import free_port

SHOP = ServiceKey("shop", "cart")
ERRORS = 'sum(rate(http_requests_total{namespace="$namespace",service="$service",code=~"5.."}[1m]))'
POLICY = HealthPolicy(
    signals={"error_rate": SignalBounds(down_max=0.05)},
    hysteresis=Hysteresis(down_after=2, up_after=1, min_down_seconds=0),
)


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=1) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_session() as client:
        yield client


async def healthz_server(host: str, port: int) -> web.AppRunner:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def cart(report: ClusterReport | None) -> Any:
    assert report is not None
    return next(s for s in report.services if s.key == SHOP)


async def run_collector(collector: ClusterCollector) -> asyncio.Task[None]:
    task = asyncio.create_task(collector.run())
    await until(
        lambda: (
            collector.last_report is not None
            and any(s.key == SHOP for s in collector.last_report.services)
        )
    )
    return task


async def test_an_http_probe_downs_the_service_when_its_load_balancer_dies(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    port = free_port()
    # The load balancer address is on loopback, so the probe never leaves this machine.
    fleet.put_service(
        "eu-west",
        ServiceSpec(
            namespace="shop",
            name="cart",
            ports=(Port("http", port),),
            addresses=("127.0.0.2",),
            annotations={"mcobs.io/global": "true", "mcobs.io/probe": "http:/healthz"},
        ),
    )
    api = await kube_api(fleet, tmp_path, session)

    async def connect() -> KubeApi:
        return api

    balancer = await healthz_server("127.0.0.2", port)
    collector = ClusterCollector(
        identity=ClusterIdentity("eu-west", "europe-west"),
        connect=connect,
        signals=None,
        store=MemoryCatalog(),
        policy=POLICY,
        interval=0.2,
        checks=ServiceChecks(session=session, timeout=0.5),
    )
    task = await run_collector(collector)
    try:
        await until(lambda: cart(collector.last_report).health is not None)
        assert cart(collector.last_report).health.state is HealthState.HEALTHY
        await balancer.cleanup()  # the load balancer dies; pods are still Ready
        await until(lambda: cart(collector.last_report).health.state is HealthState.DOWN, 5)
        reasons = cart(collector.last_report).health.reasons
        assert reasons[0].startswith(f"probe failed: GET http://127.0.0.2:{port}/healthz:")
        assert collector.last_report is not None
        assert collector.last_report.health.state is HealthState.HEALTHY  # only the service
        balancer = await healthz_server("127.0.0.2", port)
        await until(lambda: cart(collector.last_report).health.state is HealthState.HEALTHY, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await balancer.cleanup()


async def test_a_templated_signal_downs_one_service(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    fleet.put_service(
        "eu-west",
        ServiceSpec(
            namespace="shop",
            name="cart",
            addresses=("192.0.2.77",),
            annotations={"mcobs.io/global": "true", "mcobs.io/signals": "error_rate"},
        ),
    )
    api = await kube_api(fleet, tmp_path, session)

    async def connect() -> KubeApi:
        return api

    executor = ThreadPoolExecutor(2)
    signals = PrometheusSignals(fleet.cluster("eu-west").prometheus_url, [], 2.0, executor, session)
    collector = ClusterCollector(
        identity=ClusterIdentity("eu-west", "europe-west"),
        connect=connect,
        signals=signals,
        store=MemoryCatalog(),
        policy=POLICY,
        interval=0.2,
        checks=ServiceChecks(signals={"error_rate": ERRORS}),
    )
    expanded = ERRORS.replace("$namespace", "shop").replace("$service", "cart")
    fleet.pin_query("eu-west", expanded, 0.01)
    task = await run_collector(collector)
    try:
        await until(
            lambda: (cart(collector.last_report).health or HealthState).state is HealthState.HEALTHY
        )  # type: ignore[attr-defined]
        fleet.pin_query("eu-west", expanded, 0.5)
        await until(lambda: cart(collector.last_report).health.state is HealthState.DOWN, 5)
        assert cart(collector.last_report).health.reasons[0] == "signal error_rate = 0.5 > 0.05"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        signals.close()
        executor.shutdown()
