"""Prometheus metrics of mcobs: scrape-time collectors, recorders and `GET /metrics`.

Every metric is listed in `mcobs.metrics.spec.SPECS` and documented in
`mcobs/grafana/README.md`.
"""

from mcobs.metrics.bundle import Metrics, install_metrics
from mcobs.metrics.dns import DnsLatency, DnsStatsCollector
from mcobs.metrics.http import metrics_route
from mcobs.metrics.hub import HubCollector, HubSource
from mcobs.metrics.recorders import CatalogLag, CollectorMetrics, DecisionRecorder
from mcobs.metrics.replica import ReplicaCollector, ReplicaStats
from mcobs.metrics.spec import SPECS, MetricSpec

__all__ = [
    "SPECS",
    "CatalogLag",
    "CollectorMetrics",
    "DecisionRecorder",
    "DnsLatency",
    "DnsStatsCollector",
    "HubCollector",
    "HubSource",
    "MetricSpec",
    "Metrics",
    "ReplicaCollector",
    "ReplicaStats",
    "install_metrics",
    "metrics_route",
]
