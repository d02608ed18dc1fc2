"""This replica's part among several, read on every scrape: the clusters it collects,
the replicas it sees, and whether it holds the decision lease."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from mcobs.metrics.spec import spec


@dataclass(frozen=True, slots=True)
class ReplicaStats:
    owned_clusters: int
    members: int
    leader: bool


_NAMES = ("mcobs_shard_owned_clusters", "mcobs_shard_members", "mcobs_decider_leader")


def _gauge(name: str) -> GaugeMetricFamily:
    found = spec(name)
    return GaugeMetricFamily(found.name, found.help, labels=list(found.labels))


class ReplicaCollector:
    """A `prometheus_client` collector over `stats()` (the hub's)."""

    def __init__(self, stats: Callable[[], ReplicaStats]) -> None:
        self._stats = stats

    def describe(self) -> Iterator[Metric]:
        for name in _NAMES:
            yield _gauge(name)

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        values = (stats.owned_clusters, stats.members, 1 if stats.leader else 0)
        for name, value in zip(_NAMES, values, strict=True):
            gauge = _gauge(name)
            gauge.add_metric([], float(value))
            yield gauge
