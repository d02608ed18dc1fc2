"""Cluster, service and catalog metrics, read from the hub's state on every scrape.

`HubCollector` keeps nothing of its own: each scrape reads the current snapshot
and zone plan, so the numbers are exactly what the HTTP API and the DNS server
see at that moment, and no background loop is needed to keep them fresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from mcobs.answer import ServicePlan, ZonePlan
from mcobs.health import effective_health
from mcobs.metrics.spec import spec
from mcobs.model import CatalogSnapshot, HealthState

NO_STRATEGY = "none"


class HubSource(Protocol):
    """What the collector reads (`mcobs.hub.HubState` has it all)."""

    @property
    def ready(self) -> bool: ...

    @property
    def snapshot(self) -> CatalogSnapshot: ...

    @property
    def plan(self) -> ZonePlan: ...

    @property
    def stale_after(self) -> float: ...

    def now(self) -> float: ...


def _gauge(name: str) -> GaugeMetricFamily:
    found = spec(name)
    return GaugeMetricFamily(found.name, found.help, labels=list(found.labels))


def _strategy(plan: ServicePlan) -> str:
    # The routing strategy arrived after the first plans; tolerate plans without it.
    value = getattr(plan, "strategy", None)
    return value if isinstance(value, str) and value else NO_STRATEGY


class HubCollector:
    """A `prometheus_client` collector over a `HubSource`; register it once per registry."""

    def __init__(self, hub: HubSource) -> None:
        self._hub = hub

    def describe(self) -> Iterator[Metric]:
        for name in _NAMES:
            yield _gauge(name)

    def collect(self) -> Iterator[Metric]:
        hub = self._hub
        snapshot, plan, now = hub.snapshot, hub.plan, hub.now()
        yield from self._clusters(snapshot, now, hub.stale_after)
        yield from self._services(plan)
        loaded = _gauge("mcobs_catalog_loaded")
        loaded.add_metric([], 1.0 if hub.ready else 0.0)
        version = _gauge("mcobs_catalog_version")
        version.add_metric([], float(snapshot.version))
        serial = _gauge("mcobs_dns_zone_serial")
        serial.add_metric([], float(plan.view.soa.serial))
        yield from (loaded, version, serial)

    @staticmethod
    def _clusters(snapshot: CatalogSnapshot, now: float, stale_after: float) -> Iterator[Metric]:
        up = _gauge("mcobs_cluster_up")
        score = _gauge("mcobs_cluster_health_score")
        state = _gauge("mcobs_cluster_state")
        last = _gauge("mcobs_cluster_last_report_timestamp_seconds")
        for name in sorted(snapshot.reports):
            report = snapshot.reports[name]
            health = effective_health(report, now, stale_after)
            up.add_metric([name, report.region], 1.0 if health.state.serves else 0.0)
            score.add_metric([name, report.region], health.score)
            for each in HealthState:
                state.add_metric([name, each.value], 1.0 if each is health.state else 0.0)
            last.add_metric([name], report.observed_at)
        yield from (up, score, state, last)

    @staticmethod
    def _services(plan: ZonePlan) -> Iterator[Metric]:
        in_answer = _gauge("mcobs_service_in_answer")
        ready = _gauge("mcobs_service_ready_endpoints")
        total = _gauge("mcobs_service_endpoints")
        weight = _gauge("mcobs_service_answer_weight")
        last_resort = _gauge("mcobs_service_last_resort")
        info = _gauge("mcobs_service_info")
        for key in sorted(plan.services):
            service = plan.services[key]
            ns, name = key.namespace, key.name
            last_resort.add_metric([ns, name], 1.0 if service.last_resort else 0.0)
            info.add_metric([ns, name, _strategy(service)], 1.0)
            for choice in sorted(service.choices, key=lambda c: c.cluster):
                labels = [ns, name, choice.cluster]
                in_answer.add_metric(labels, 1.0 if choice.in_answer else 0.0)
                ready.add_metric(labels, float(choice.service.ready_endpoints))
                total.add_metric(labels, float(choice.service.total_endpoints))
                weight.add_metric(labels, choice.rank if choice.in_answer else 0.0)
        yield from (in_answer, ready, total, weight, last_resort, info)


_NAMES = (
    "mcobs_cluster_up",
    "mcobs_cluster_health_score",
    "mcobs_cluster_state",
    "mcobs_cluster_last_report_timestamp_seconds",
    "mcobs_service_in_answer",
    "mcobs_service_ready_endpoints",
    "mcobs_service_endpoints",
    "mcobs_service_answer_weight",
    "mcobs_service_last_resort",
    "mcobs_service_info",
    "mcobs_catalog_loaded",
    "mcobs_catalog_version",
    "mcobs_dns_zone_serial",
)
