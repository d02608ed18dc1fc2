"""Every mcobs metric on one registry, with the recorders the rest of mcobs calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from mcobs.dnsserver.stats import StatsSnapshot
from mcobs.metrics.dns import DnsLatency, DnsStatsCollector
from mcobs.metrics.hub import HubCollector, HubSource
from mcobs.metrics.recorders import CatalogLag, CollectorMetrics, DecisionRecorder
from mcobs.metrics.replica import ReplicaCollector, ReplicaStats


@dataclass(frozen=True, slots=True)
class Metrics:
    """The registry and the recorders; build it once per process with `install_metrics`."""

    registry: CollectorRegistry
    decisions: DecisionRecorder
    collectors: CollectorMetrics
    dns_latency: DnsLatency
    catalog_lag: CatalogLag


def install_metrics(
    hub: HubSource,
    dns_stats: Callable[[], StatsSnapshot | None],
    registry: CollectorRegistry | None = None,
    replica: Callable[[], ReplicaStats] | None = None,
) -> Metrics:
    """Register the scrape-time collectors and create the recorders on `registry`.

    `hub` is read on every scrape (`mcobs.hub.HubState`); `dns_stats` returns
    the DNS server's counters, or None while it is not running; `replica`, this
    replica's share of collection and the decision lease (no such gauges without it).
    """
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(HubCollector(hub))
    registry.register(DnsStatsCollector(dns_stats))
    if replica is not None:
        registry.register(ReplicaCollector(replica))
    return Metrics(
        registry=registry,
        decisions=DecisionRecorder(registry),
        collectors=CollectorMetrics(registry),
        dns_latency=DnsLatency(registry),
        catalog_lag=CatalogLag(registry),
    )
