"""`GET /metrics` over real HTTP: what a Prometheus server scraping mcobs would read."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mcobs.answer import ZonePlan, ZonePolicy, build_zone
from mcobs.dnsserver.stats import DnsStats, StatsSnapshot
from mcobs.metrics import SPECS, Metrics, ReplicaStats, install_metrics, metrics_route
from mcobs.model import CatalogSnapshot, Health, HealthState, ServiceKey
from mcobs.notify.event import Event, new_event
from mcobs.zone import Nameserver
from tests.core.factories import WEB, report, service, snapshot

POLICY = ZonePolicy(
    origin="global.example.com.", nameservers=(Nameserver("ns1.global.example.com."),)
)
NOW = 1010.0
SECRET = "s3cr3t-t0ken"
API = ServiceKey("shop", "api")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class FakeHub:
    snapshot: CatalogSnapshot
    ready: bool = True
    stale_after: float = 30.0
    clock: list[float] = field(default_factory=lambda: [NOW])
    replica: ReplicaStats = field(
        default_factory=lambda: ReplicaStats(owned_clusters=2, members=3, leader=True)
    )

    @property
    def plan(self) -> ZonePlan:
        return build_zone(self.snapshot, POLICY, self.now(), serial=42)

    def now(self) -> float:
        return self.clock[0]


def fleet() -> CatalogSnapshot:
    """eu-west healthy, ap-south degraded with web unready, us-east stale (down)."""
    degraded = Health(0.5, HealthState.DEGRADED, ("apiserver /readyz is failing",))
    secret_annotations = {"mcobs.io/token": SECRET}
    eu = report(
        "eu-west",
        (
            service("eu-west", ("192.0.2.1",), annotations=secret_annotations),
            service("eu-west", ("192.0.2.11",), key=API, ready=2, total=4),
        ),
        region="europe",
        weight=2.0,
    )
    eu = replace(eu, labels=MappingProxyType({"api-token": SECRET}))
    ap = report(
        "ap-south",
        (service("ap-south", ("192.0.2.2",), ready=0, total=3),),
        health=degraded,
        region="asia",
    )
    us = report(
        "us-east",
        (service("us-east", ("192.0.2.3",)),),
        observed_at=NOW - 100,
        region="america",
    )
    return snapshot(eu, ap, us, version=9)


def event(type_: str, at: float, **data: Any) -> Event:
    return new_event(type_, data, clock=lambda: at, rng=random.Random(1))


def failover(at: float, active: bool, before: list[str], after: list[str]) -> Event:
    return event(
        "service.failover",
        at,
        namespace="default",
        service="web",
        active=active,
        reasons=["us-east: cluster is down"],
        **{"from": before, "to": after},
    )


def state_changed(at: float, cluster: str, before: str, after: str) -> Event:
    return event(
        "cluster.state_changed", at, cluster=cluster, reasons=[], **{"from": before, "to": after}
    )


def dns_stats() -> StatsSnapshot:
    stats = DnsStats()
    stats.queries[1] += 5  # A
    stats.queries[33] += 2  # SRV
    stats.queries[65280] += 3  # private use: counted as OTHER
    stats.queries[65281] += 1
    stats.responses[0] += 8  # NOERROR
    stats.responses[3] += 3  # NXDOMAIN
    stats.fast_path = 9
    stats.slow_path = 2
    stats.truncated = 1
    stats.dropped = 4
    stats.tcp_connections = 6
    stats.cache_misses = 3
    stats.rate_limited = 7
    stats.rate_limited_slipped = 2
    return stats.snapshot()


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub(fleet())


@pytest.fixture
def metrics(hub: FakeHub) -> Metrics:
    return install_metrics(hub, dns_stats, CollectorRegistry(), replica=lambda: hub.replica)


@pytest.fixture
async def client(metrics: Metrics) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = web.Application()
    app.add_routes([metrics_route(metrics.registry)])
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def scrape(client: TestClient) -> Samples:  # type: ignore[type-arg]
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_clusters_show_up_health_state_and_last_report(client: TestClient) -> None:  # type: ignore[type-arg]
    samples = await scrape(client)
    assert value(samples, "mcobs_cluster_up", cluster="eu-west", region="europe") == 1
    assert value(samples, "mcobs_cluster_up", cluster="ap-south", region="asia") == 1
    # us-east's last report is 100s old: stale, so down and scored 0.
    assert value(samples, "mcobs_cluster_up", cluster="us-east", region="america") == 0
    assert value(samples, "mcobs_cluster_health_score", cluster="eu-west", region="europe") == 1.0
    assert value(samples, "mcobs_cluster_health_score", cluster="ap-south", region="asia") == 0.5
    assert value(samples, "mcobs_cluster_health_score", cluster="us-east", region="america") == 0
    assert value(samples, "mcobs_cluster_state", cluster="ap-south", state="degraded") == 1
    assert value(samples, "mcobs_cluster_state", cluster="ap-south", state="healthy") == 0
    assert value(samples, "mcobs_cluster_state", cluster="us-east", state="down") == 1
    assert (
        value(samples, "mcobs_cluster_last_report_timestamp_seconds", cluster="us-east")
        == NOW - 100
    )
    assert value(samples, "mcobs_cluster_last_report_timestamp_seconds", cluster="eu-west") == 1000


async def test_services_show_who_answers_and_endpoints(client: TestClient) -> None:  # type: ignore[type-arg]
    samples = await scrape(client)
    web_ = {"namespace": WEB.namespace, "service": WEB.name}
    assert value(samples, "mcobs_service_in_answer", cluster="eu-west", **web_) == 1
    assert value(samples, "mcobs_service_in_answer", cluster="ap-south", **web_) == 0
    assert value(samples, "mcobs_service_in_answer", cluster="us-east", **web_) == 0
    assert value(samples, "mcobs_service_ready_endpoints", cluster="ap-south", **web_) == 0
    assert value(samples, "mcobs_service_endpoints", cluster="ap-south", **web_) == 3
    assert value(samples, "mcobs_service_answer_weight", cluster="eu-west", **web_) == 2.0
    assert value(samples, "mcobs_service_answer_weight", cluster="ap-south", **web_) == 0
    assert value(samples, "mcobs_service_last_resort", **web_) == 0
    api = {"namespace": "shop", "service": "api"}
    assert value(samples, "mcobs_service_ready_endpoints", cluster="eu-west", **api) == 2
    assert value(samples, "mcobs_service_endpoints", cluster="eu-west", **api) == 4
    infos = [k for k in samples if k[0] == "mcobs_service_info"]
    assert len(infos) == 2
    assert all(dict(labels)["strategy"] for _, labels in infos)


async def test_last_resort_when_no_cluster_can_serve(
    client: TestClient,  # type: ignore[type-arg]
    hub: FakeHub,
) -> None:
    hub.clock[0] = NOW + 1000  # every report turns stale
    samples = await scrape(client)
    assert value(samples, "mcobs_service_last_resort", namespace="default", service="web") == 1
    assert value(samples, "mcobs_cluster_up", cluster="eu-west", region="europe") == 0


async def test_catalog_and_zone(client: TestClient, hub: FakeHub) -> None:  # type: ignore[type-arg]
    samples = await scrape(client)
    assert value(samples, "mcobs_catalog_version") == 9
    assert value(samples, "mcobs_catalog_loaded") == 1
    assert value(samples, "mcobs_dns_zone_serial") == 42
    hub.ready = False
    assert value(await scrape(client), "mcobs_catalog_loaded") == 0


async def test_this_replicas_share_and_leadership(client: TestClient, hub: FakeHub) -> None:  # type: ignore[type-arg]
    samples = await scrape(client)
    assert value(samples, "mcobs_shard_owned_clusters") == 2
    assert value(samples, "mcobs_shard_members") == 3
    assert value(samples, "mcobs_decider_leader") == 1
    hub.replica = ReplicaStats(owned_clusters=0, members=1, leader=False)
    samples = await scrape(client)
    assert value(samples, "mcobs_shard_owned_clusters") == 0
    assert value(samples, "mcobs_decider_leader") == 0


async def test_dns_counters_with_bounded_labels(client: TestClient) -> None:  # type: ignore[type-arg]
    samples = await scrape(client)
    assert value(samples, "mcobs_dns_queries_total", qtype="A") == 5
    assert value(samples, "mcobs_dns_queries_total", qtype="SRV") == 2
    assert value(samples, "mcobs_dns_queries_total", qtype="OTHER") == 4
    assert not [k for k in samples if dict(k[1]).get("qtype", "").startswith("TYPE")]
    assert value(samples, "mcobs_dns_responses_total", rcode="NOERROR") == 8
    assert value(samples, "mcobs_dns_responses_total", rcode="NXDOMAIN") == 3
    assert value(samples, "mcobs_dns_answer_path_total", path="fast") == 9
    assert value(samples, "mcobs_dns_answer_path_total", path="slow") == 2
    assert value(samples, "mcobs_dns_truncated_total") == 1
    assert value(samples, "mcobs_dns_dropped_total") == 4
    assert value(samples, "mcobs_dns_tcp_connections_total") == 6
    assert value(samples, "mcobs_dns_cache_misses_total") == 3
    assert value(samples, "mcobs_dns_rate_limited_total", action="dropped") == 7
    assert value(samples, "mcobs_dns_rate_limited_total", action="slipped") == 2


async def test_no_dns_counters_while_the_server_is_down(hub: FakeHub) -> None:
    registry = CollectorRegistry()
    install_metrics(hub, lambda: None, registry)
    text = generate(registry)
    assert "mcobs_dns_queries_total" not in text
    assert "mcobs_cluster_up" in text


async def test_recorders(client: TestClient, metrics: Metrics) -> None:  # type: ignore[type-arg]
    metrics.dns_latency.observe(0.0004)
    metrics.dns_latency.observe(0.002, transport="tcp", strategy="geo")
    metrics.dns_latency.observe(0.0004, transport="quic", strategy="Not A Label!")
    metrics.decisions.record(state_changed(1234.0, "us-east", "healthy", "down"))
    metrics.decisions.record(failover(1234.5, True, ["us-east", "eu-west"], ["eu-west"]))
    metrics.decisions.record(failover(1240.0, True, ["eu-west"], ["ap-south"]))
    metrics.decisions.record(failover(1300.0, False, ["ap-south"], ["us-east", "eu-west"]))
    metrics.collectors.sweep("eu-west", 0.3)
    metrics.collectors.sweep("us-east", 3.0)
    metrics.collectors.error("us-east", "api")
    metrics.collectors.error("us-east", "something-new")
    metrics.catalog_lag.snapshot_applied(fleet(), now=1000.5)
    metrics.catalog_lag.snapshot_applied(fleet(), now=1003.0)  # nothing changed

    samples = await scrape(client)
    udp = {"transport": "udp", "strategy": "none"}
    assert value(samples, "mcobs_dns_response_seconds_count", **udp) == 1
    assert value(samples, "mcobs_dns_response_seconds_bucket", le="0.0005", **udp) == 1
    assert value(samples, "mcobs_dns_response_seconds_bucket", le="0.00025", **udp) == 0
    assert value(samples, "mcobs_dns_response_seconds_count", transport="tcp", strategy="geo") == 1
    assert (
        value(samples, "mcobs_dns_response_seconds_count", transport="other", strategy="other") == 1
    )

    web_ = {"namespace": "default", "service": "web"}
    assert value(samples, "mcobs_failovers_total", **web_) == 2
    assert value(samples, "mcobs_recoveries_total", **web_) == 1
    assert value(samples, "mcobs_last_failover_timestamp_seconds", **web_) == 1240.0
    assert value(samples, "mcobs_decisions_total", kind="failover") == 2
    assert value(samples, "mcobs_decisions_total", kind="recovery") == 1
    assert value(samples, "mcobs_decisions_total", kind="cluster_state") == 1
    assert value(samples, "mcobs_decisions_total", kind="last_resort") == 0  # shown from start

    assert value(samples, "mcobs_collector_sweep_seconds_count") == 2
    assert value(samples, "mcobs_collector_sweep_seconds_bucket", le="0.5") == 1
    assert value(samples, "mcobs_collector_last_sweep_seconds", cluster="us-east") == 3.0
    assert value(samples, "mcobs_collector_errors_total", cluster="us-east", kind="api") == 1
    assert value(samples, "mcobs_collector_errors_total", cluster="us-east", kind="other") == 1

    # Three reports, each observed once: 0.5s, 0.5s and 110.5s (us-east was late).
    assert value(samples, "mcobs_catalog_update_lag_seconds_count") == 3
    assert value(samples, "mcobs_catalog_update_lag_seconds_bucket", le="1.0") == 2

    metrics.collectors.forget("us-east")
    metrics.collectors.forget("never-swept-here")  # a cluster handed over before a sweep
    samples = await scrape(client)
    assert ("mcobs_collector_last_sweep_seconds", (("cluster", "us-east"),)) not in samples
    assert not [k for k in samples if ("cluster", "us-east") in k[1] and "errors" in k[0]]


async def test_no_secrets_in_labels(client: TestClient, metrics: Metrics) -> None:  # type: ignore[type-arg]
    # An event type this version does not know: counted, but never as a label of its own.
    odd = Event(
        "evt_01HX0000000000000000000000", f"x.{SECRET}", failover(1.0, True, [], []).occurred_at, {}
    )
    metrics.decisions.record(odd)
    response = await client.get("/metrics")
    assert SECRET not in await response.text()


async def test_openmetrics_when_asked(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await response.text()).rstrip().endswith("# EOF")


async def test_every_exposed_family_is_specified(metrics: Metrics) -> None:
    metrics.dns_latency.observe(0.001)
    metrics.decisions.record(failover(1.0, True, ["eu-west"], []))
    metrics.collectors.sweep("eu-west", 0.1)
    metrics.collectors.error("eu-west", "api")
    metrics.catalog_lag.snapshot_applied(fleet(), now=NOW)
    outbox = pytest.importorskip("mcobs.notify.stats").DeliveryStats(metrics.registry)
    outbox.declare(["pagerduty"])
    outbox.event("service.failover")
    outbox.set_dead_letters(0)
    outbox.set_buffered(0)
    exposed = {f.name: f for f in text_string_to_metric_families(generate(metrics.registry))}
    by_family = {s.family: s for s in SPECS}
    for name, family in exposed.items():
        if name.endswith("_created"):  # prometheus_client's creation times of counters
            continue
        assert name in by_family, f"{name} is exposed but not in mcobs.metrics.spec"
        assert family.type == by_family[name].kind
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            assert labels == set(by_family[name].labels), sample
    # Only series that need traffic first (a failed webhook attempt) are missing.
    assert set(by_family) - set(exposed) <= {
        "mcobs_webhook_attempt_failures",
        "mcobs_webhook_attempt_duration_seconds",
    }


def test_names_follow_prometheus_practice() -> None:
    for spec in SPECS:
        assert spec.name.startswith("mcobs_")
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert "_milliseconds" not in spec.name and "_ms" not in spec.name
        assert spec.help.endswith("."), spec.name
    assert len({s.name for s in SPECS}) == len(SPECS)


def generate(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


def test_readme_documents_every_metric() -> None:
    from pathlib import Path

    from mcobs.metrics.spec import markdown_table

    readme = Path(__file__).resolve().parents[2] / "mcobs" / "grafana" / "README.md"
    assert markdown_table() in readme.read_text(encoding="utf-8"), (
        "paste mcobs.metrics.spec.markdown_table() into mcobs/grafana/README.md"
    )
