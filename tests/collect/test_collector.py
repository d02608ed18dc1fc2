"""Collectors against the simulated clusters, through the real client libraries."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mcobs.catalog.memory import MemoryCatalog
from mcobs.collect.cluster import ClusterCollector, ClusterIdentity
from mcobs.collect.credentials import CredentialsError, load_credentials
from mcobs.collect.kubeapi import Expired, KubeApi, new_session
from mcobs.collect.prom import PrometheusSignals, SignalQuery
from mcobs.collect.reflector import Reflector
from mcobs.health import HealthPolicy, Hysteresis, SignalBounds
from mcobs.model import HealthState, ServiceKey, Signal
from mcobs.sim.cluster import ServiceSpec
from mcobs.sim.fleet import SimFleet

POLICY = HealthPolicy(signals={"targets_up": SignalBounds(healthy_min=0.9)})
TARGETS_UP = SignalQuery("targets_up", "sum(up) / count(up)")


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=2) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_session() as client:
        yield client


@pytest.fixture
def executor() -> Any:
    pool = ThreadPoolExecutor(2)
    yield pool
    pool.shutdown()


async def kube_api(fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession) -> KubeApi:
    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    credentials = await asyncio.to_thread(load_credentials, kubeconfig, "eu-west", False)
    return KubeApi(session, credentials, timeout=2.0)


async def until(check: Any, limit: float = 10.0) -> None:
    for _ in range(int(limit / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_credentials_hide_the_token(fleet: SimFleet, tmp_path: Path) -> None:
    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    credentials = load_credentials(kubeconfig, "eu-west", False)
    token = fleet.cluster("eu-west").token
    assert credentials.headers() == {"Authorization": f"Bearer {token}"}
    assert token not in repr(credentials)
    with pytest.raises(CredentialsError, match="kubeconfig context nowhere"):
        load_credentials(kubeconfig, "nowhere", False)


def test_many_clusters_loading_credentials_at_once_parse_their_kubeconfig_once(
    fleet: SimFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub starting a thousand clusters loads their credentials in parallel threads."""
    from mcobs.collect import credentials

    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    parses = []
    real_load = credentials.yaml.load

    def counted_load(*args: Any, **kwargs: Any) -> Any:
        parses.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(credentials.yaml, "load", counted_load)
    with ThreadPoolExecutor(8) as pool:
        loaded = list(
            pool.map(lambda c: load_credentials(kubeconfig, c, False), ["eu-west", "us-east"] * 8)
        )
    assert len(parses) == 1
    assert len({c.server for c in loaded}) == 2  # each context its own server


async def test_collector_reports_services_health_and_signals(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession, executor: Any
) -> None:
    api = await kube_api(fleet, tmp_path, session)
    store = MemoryCatalog()
    signals = PrometheusSignals(
        fleet.cluster("eu-west").prometheus_url, [TARGETS_UP], 2.0, executor, session
    )

    async def connect() -> KubeApi:
        return api

    collector = ClusterCollector(
        identity=ClusterIdentity("eu-west", "europe-west", weight=2.0),
        connect=connect,
        signals=signals,
        store=store,
        policy=POLICY,
        interval=0.2,
    )
    task = asyncio.create_task(collector.run())
    try:
        await until(
            lambda: collector.last_report is not None and collector.last_report.services_synced
        )
        await until(lambda: len(collector.last_report.services) == 2)  # type: ignore[union-attr]
        report = (await store.snapshot()).reports["eu-west"]
        assert report.health.state is HealthState.HEALTHY
        assert report.weight == 2.0
        assert report.probe.nodes_ready == 3
        assert [(s.name, s.value) for s in report.signals] == [("targets_up", 1.0)]
        web = next(s for s in report.services if s.key == ServiceKey("default", "web"))
        assert web.addresses == ("192.0.2.1", "2001:db8:1::1")
        assert (web.ready_endpoints, web.total_endpoints) == (3, 3)

        # A watched change reaches the catalog without waiting for a sweep.
        fleet.set_ready("eu-west", "default", "web", 1)
        await until(lambda: _ready(store_report(collector), "web") == 1)

        # A Service with bad annotations is still collected; the problems travel with it.
        fleet.put_service(
            "eu-west",
            ServiceSpec(
                namespace="shop",
                name="cart",
                annotations={"mcobs.io/global": "true", "mcobs.io/ttl": "soon"},
                addresses=("192.0.2.77",),
            ),
        )
        await until(lambda: _ready(store_report(collector), "cart") == 3)

        # A Prometheus signal below its threshold degrades the cluster.
        fleet.pin_query("eu-west", TARGETS_UP.query, 0.5)
        await until(lambda: store_report(collector).health.state is HealthState.DEGRADED)
        assert store_report(collector).health.reasons == ("signal targets_up = 0.5 < 0.9",)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        signals.close()


def store_report(collector: ClusterCollector) -> Any:
    assert collector.last_report is not None
    return collector.last_report


def _ready(report: Any, name: str) -> int | None:
    for service in report.services:
        if service.key.name == name:
            return int(service.ready_endpoints)
    return None


async def test_outage_marks_the_cluster_down_within_seconds_and_recovers(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    api = await kube_api(fleet, tmp_path, session)

    async def connect() -> KubeApi:
        return api

    collector = ClusterCollector(
        identity=ClusterIdentity("eu-west", "europe-west"),
        connect=connect,
        signals=None,
        store=MemoryCatalog(),
        policy=HealthPolicy(hysteresis=Hysteresis(down_after=2, up_after=1, min_down_seconds=0)),
        interval=5.0,
    )
    task = asyncio.create_task(collector.run())
    try:
        await until(lambda: collector.last_report is not None and collector.last_report.services)
        await fleet.outage("eu-west")
        # The interval is 5 s, but a cut watch triggers early probes.
        await until(lambda: store_report(collector).health.state is HealthState.DOWN, 4.0)
        report = store_report(collector)
        assert not report.probe.reachable and not report.services_synced
        assert report.services, "the last known services are kept while the cluster is away"
        await fleet.recover("eu-west")
        await until(lambda: store_report(collector).health.state is HealthState.HEALTHY, 6.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_reading_many_prometheus_servers_starts_no_thread_per_server(
    fleet: SimFleet, executor: Any, session: aiohttp.ClientSession
) -> None:
    """A thousand clusters must not mean a thousand idle-connection watcher threads."""
    urls = set(fleet.prometheus_urls().values())
    assert len(urls) == 2  # one connection pool each
    before = threading.active_count()
    many = [PrometheusSignals(url, [TARGETS_UP], 2.0, executor, session) for url in sorted(urls)]
    try:
        for signals in many:
            (signal,) = await signals.read()
            assert signal.value == 1.0
        assert threading.active_count() <= before + 2  # at most the executor's two workers
    finally:
        for signals in many:
            signals.close()


async def test_prometheus_reads_take_proxy_and_ca_settings_from_the_environment_once(
    executor: Any, monkeypatch: pytest.MonkeyPatch, session: aiohttp.ClientSession
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "prometheus.internal")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/fleet-ca.pem")
    proxied = PrometheusSignals(
        "http://prometheus.example:9090/", [TARGETS_UP], 1.0, executor, session
    )
    direct = PrometheusSignals(
        "http://prometheus.internal:9090/", [TARGETS_UP], 1.0, executor, session
    )
    try:
        assert proxied._session.proxies.get("http") == "http://proxy.example:3128"
        assert "http" not in direct._session.proxies
        assert proxied._session.verify == "/etc/ssl/fleet-ca.pem"
    finally:
        proxied.close()
        direct.close()


async def test_prometheus_that_refuses_connections_gives_a_reason(
    executor: Any, session: aiohttp.ClientSession
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        signals = PrometheusSignals(
            f"http://127.0.0.1:{port}/", [TARGETS_UP], 1.0, executor, session
        )
        (signal,) = await signals.read()
    assert signal.value is None and signal.error == "cannot connect"


async def test_prometheus_that_never_answers_times_out_into_a_reason(
    executor: Any, session: aiohttp.ClientSession
) -> None:
    # A listening socket that never accepts: the TCP handshake completes, no answer comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        signals = PrometheusSignals(
            f"http://127.0.0.1:{port}/", [TARGETS_UP], 0.3, executor, session
        )
        try:
            (signal,) = await asyncio.wait_for(signals.read(), 3.0)
        finally:
            signals.close()
    assert signal.value is None and signal.error == "timed out"


async def test_watch_from_an_expired_version_raises_expired_and_reflector_relists(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    api = await kube_api(fleet, tmp_path, session)
    for ready in (0, 1, 2, 3) * 300:  # more changes than the simulator's 1000-event history
        fleet.set_ready("eu-west", "default", "web", ready)
    with pytest.raises(Expired):
        async for _ in api.watch("/api/v1/services", "1", 5):
            pass

    lists = 0

    class ExpiringOnce:
        """Delegates to the real API but says 410 to the first watch."""

        server = api.server

        async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
            nonlocal lists
            lists += 1
            return await api.get_json(path, params)

        async def watch(self, path: str, version: str, seconds: int) -> AsyncIterator[Any]:
            if lists == 1:
                raise Expired("expired", 410)
            async for event in api.watch(path, version, seconds):
                yield event

    changes: list[int] = []
    reflector: Reflector[str] = Reflector(
        api=ExpiringOnce(),  # type: ignore[arg-type]
        path="/api/v1/services",
        convert=lambda obj: str(obj["metadata"]["name"]),
        on_change=lambda: changes.append(1),
        on_error=lambda message: None,
        label="test",
    )
    task = asyncio.create_task(reflector.run())
    try:
        await until(lambda: lists == 2 and reflector.synced)
        assert ("default", "web") in reflector.items
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_quiet_cluster_is_written_as_a_heartbeat_not_every_sweep(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    api = await kube_api(fleet, tmp_path, session)

    class CountingCatalog(MemoryCatalog):
        puts = 0
        heartbeats = 0

        async def put(self, report: Any) -> None:
            CountingCatalog.puts += 1
            await super().put(report)

        async def heartbeat(self, cluster: str, observed_at: float) -> bool:
            CountingCatalog.heartbeats += 1
            return await super().heartbeat(cluster, observed_at)

    async def connect() -> KubeApi:
        return api

    store = CountingCatalog()
    collector = ClusterCollector(
        identity=ClusterIdentity("eu-west", "europe-west"),
        connect=connect,
        signals=None,
        store=store,
        policy=HealthPolicy(stale_after=3.0),  # a heartbeat every second
        interval=0.1,
    )
    task = asyncio.create_task(collector.run())
    try:
        await until(
            lambda: collector.last_report is not None and len(collector.last_report.services) == 2
        )
        await asyncio.sleep(0.5)
        puts, heartbeats = CountingCatalog.puts, CountingCatalog.heartbeats
        first_seen = (await store.snapshot()).reports["eu-west"].observed_at
        await asyncio.sleep(2.2)  # about 20 sweeps, nothing changes
        assert CountingCatalog.puts == puts
        assert 1 <= CountingCatalog.heartbeats - heartbeats <= 3
        assert (await store.snapshot()).reports["eu-west"].observed_at > first_seen + 0.9
        fleet.set_ready("eu-west", "default", "web", 1)  # a change is written at once
        await until(lambda: _ready(store_report(collector), "web") == 1, 2.0)
        assert CountingCatalog.puts == puts + 1
        await store.remove("eu-west")  # lost (e.g. Redis restarted empty): the next
        await until(lambda: CountingCatalog.puts == puts + 2, 2.0)  # heartbeat writes it whole
        assert "eu-west" in (await store.snapshot()).reports
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def eu_west(api: KubeApi, **options: Any) -> ClusterCollector:
    """A collector of the simulated eu-west through `api`; `options` as ClusterCollector's."""
    settings: dict[str, Any] = {
        "connect": lambda: _return(api),
        "signals": None,
        "store": MemoryCatalog(),
        "policy": HealthPolicy(),
        "interval": 0.1,
        **options,
    }
    return ClusterCollector(identity=ClusterIdentity("eu-west", "europe-west"), **settings)


@contextlib.asynccontextmanager
async def running(collector: ClusterCollector) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(collector.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _return(api: KubeApi) -> KubeApi:
    return api


async def test_the_first_sweep_waits_for_slow_credentials_instead_of_reporting_unreachable(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    api = await kube_api(fleet, tmp_path, session)

    async def slow_connect() -> KubeApi:
        await asyncio.sleep(0.6)  # a hub loading a thousand clusters' credentials
        return api

    collector = eu_west(api, connect=slow_connect)
    async with running(collector):
        await until(lambda: collector.last_report is not None, 5.0)
        first = store_report(collector)
        assert first.probe.reachable, first.probe.error
        assert first.health.state.serves


class CountingSignals:
    """A Prometheus that always says the same, and counts how often it is asked."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.reads = 0

    async def read(self) -> tuple[Signal, ...]:
        self.reads += 1
        return (Signal("targets_up", self.value),)

    async def read_queries(self, queries: Sequence[SignalQuery]) -> tuple[Signal, ...]:
        return ()


async def test_signals_are_read_every_signal_interval_not_every_sweep(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    signals = CountingSignals(1.0)
    policy = HealthPolicy(
        hysteresis=Hysteresis(down_after=2, up_after=1, min_down_seconds=0),
        signals={"targets_up": SignalBounds(healthy_min=0.9, down_min=0.5)},
    )
    api = await kube_api(fleet, tmp_path, session)
    collector = eu_west(api, signals=signals, policy=policy, signal_interval=60.0)
    async with running(collector):
        await until(lambda: collector.last_report is not None)
        await asyncio.sleep(1.0)  # about 4 sweeps (0.25 s apart at least)
        assert store_report(collector).health.state is HealthState.HEALTHY
        assert signals.reads <= 2  # the first sweeps, while health was still settling


async def test_a_closed_collector_stops_even_without_a_cancellation(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    collector = eu_west(await kube_api(fleet, tmp_path, session))
    async with running(collector) as task:
        await until(lambda: collector.last_report is not None)
        collector.close()  # the hub's own cancellation may be lost (Python 3.11 timeouts)
        await asyncio.wait([task], timeout=2.0)
        assert task.done()


async def test_a_new_collector_continues_the_catalogs_healthy_history(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """A restarted hub, or a replica taking a cluster over, whose first sweep fails
    does not take down a cluster the catalog knows as healthy: that needs
    `down_after` bad sweeps, as it did for the previous collector."""
    api = await kube_api(fleet, tmp_path, session)
    first = eu_west(api)
    async with running(first):
        await until(lambda: first.last_report is not None)
    known = store_report(first)
    assert known.health.state is HealthState.HEALTHY

    await fleet.outage("eu-west")
    reports: list[Any] = []

    class Recording(MemoryCatalog):
        async def put(self, report: Any) -> None:
            reports.append(report)
            await super().put(report)

    second = eu_west(
        api,
        store=Recording(),
        policy=HealthPolicy(hysteresis=Hysteresis(down_after=2, up_after=1)),
        interval=0.3,
        last_known=lambda name: known if name == "eu-west" else None,
    )
    try:
        async with running(second):
            await until(lambda: any(r.health.state is HealthState.DOWN for r in reports), 6.0)
            assert reports[0].health.state is HealthState.HEALTHY, reports[0].health
            assert "1 of 2 bad observations" in " ".join(reports[0].health.reasons)
    finally:
        await fleet.recover("eu-west")


async def test_waiting_for_a_probe_slot_counts_neither_as_latency_nor_against_the_timeout(
    fleet: SimFleet, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    slots = asyncio.Semaphore(1)
    await slots.acquire()  # a thousand other probes are ahead
    collector = eu_west(await kube_api(fleet, tmp_path, session), probe_slots=slots)
    async with running(collector):  # each request has a 2 s time limit
        await asyncio.sleep(2.5)
        assert collector.last_report is None  # the first sweep is still waiting its turn
        slots.release()
        await until(lambda: collector.last_report is not None, 5.0)
        probe = store_report(collector).probe
        assert probe.reachable, probe.error
        assert probe.latency_s is not None and probe.latency_s < 1.0
