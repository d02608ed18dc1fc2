"""Recorders: small objects other parts of mcobs call when something happens.

Each owns its Prometheus metrics on the registry it is given; none of them
blocks, raises on a bad label value, or keeps more than a bounded amount of
state. Time is passed in by the caller (its injected clock).
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mcobs.metrics.labels import BoundedLabel
from mcobs.metrics.spec import spec
from mcobs.model import CatalogSnapshot
from mcobs.notify.event import Event

SWEEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LOOP_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
COLLECTOR_ERROR_KINDS = frozenset({"api", "watch", "prometheus", "catalog", "credentials"})
"""Anything else counts as `other`."""
DECISION_KINDS = (
    "failover",
    "recovery",
    "last_resort",
    "last_resort_ended",
    "cluster_state",
    "drain",
    "undrain",
)
"""What `decision_kind()` makes of the decider's events; anything else counts as `other`."""
_KINDS = {
    ("service.failover", True): "failover",
    ("service.failover", False): "recovery",
    ("service.last_resort", True): "last_resort",
    ("service.last_resort", False): "last_resort_ended",
    ("override.drain", True): "drain",
    ("override.drain", False): "undrain",
}


def decision_kind(event: Event) -> str:
    """`failover`, `recovery`, `last_resort`, `last_resort_ended`, `cluster_state`, `drain`,
    `undrain`, or `other` for an event type this version does not know."""
    if event.type == "cluster.state_changed":
        return "cluster_state"
    return _KINDS.get((event.type, event.data.get("active") is True), "other")


def _counter(name: str, registry: CollectorRegistry) -> Counter:
    found = spec(name)
    return Counter(found.name, found.help, list(found.labels), registry=registry)


def _gauge(name: str, registry: CollectorRegistry) -> Gauge:
    found = spec(name)
    return Gauge(found.name, found.help, list(found.labels), registry=registry)


def _histogram(name: str, registry: CollectorRegistry, buckets: tuple[float, ...]) -> Histogram:
    found = spec(name)
    return Histogram(found.name, found.help, list(found.labels), registry=registry, buckets=buckets)


class DecisionRecorder:
    """Counts the failover logic's decisions: an event sink of `mcobs.decide.Decider`.

    `record(event)` takes each event the decider appended (`mcobs.notify.event.Event`):
    every event counts in `mcobs_decisions_total{kind}`; a service failover also in
    `mcobs_failovers_total` and `mcobs_last_failover_timestamp_seconds`, its end in
    `mcobs_recoveries_total`.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._decisions = _counter("mcobs_decisions_total", registry)
        self._failovers = _counter("mcobs_failovers_total", registry)
        self._recoveries = _counter("mcobs_recoveries_total", registry)
        self._last_failover = _gauge("mcobs_last_failover_timestamp_seconds", registry)
        self._kind = BoundedLabel(DECISION_KINDS)
        for kind in (*DECISION_KINDS, "other"):
            self._decisions.labels(kind)  # every kind shows, at 0, from the start

    def record(self, event: Event) -> None:
        kind = decision_kind(event)
        self._decisions.labels(self._kind(kind)).inc()
        if kind not in ("failover", "recovery"):
            return
        namespace, service = event.data.get("namespace"), event.data.get("service")
        if not isinstance(namespace, str) or not isinstance(service, str):
            return
        if kind == "failover":
            self._failovers.labels(namespace, service).inc()
            self._last_failover.labels(namespace, service).set(event.occurred_at.timestamp())
        else:
            self._recoveries.labels(namespace, service).inc()


class CollectorMetrics:
    """Sweep durations and errors; a cluster's collector calls these."""

    def __init__(
        self, registry: CollectorRegistry, buckets: tuple[float, ...] = SWEEP_BUCKETS
    ) -> None:
        self._sweeps = _histogram("mcobs_collector_sweep_seconds", registry, buckets)
        self._last_sweep = _gauge("mcobs_collector_last_sweep_seconds", registry)
        self._errors = _counter("mcobs_collector_errors_total", registry)
        self._inconclusive = _counter("mcobs_collector_inconclusive_probes_total", registry)
        self._loop_lag = _histogram("mcobs_event_loop_lag_seconds", registry, LOOP_LAG_BUCKETS)
        self._kind = BoundedLabel(COLLECTOR_ERROR_KINDS)

    def sweep(self, cluster: str, seconds: float) -> None:
        """One health sweep of `cluster` took `seconds`."""
        self._sweeps.observe(seconds)
        self._last_sweep.labels(cluster).set(seconds)

    def error(self, cluster: str, kind: str) -> None:
        """One error of `kind` (api, watch, prometheus, catalog, credentials) in `cluster`."""
        self._errors.labels(cluster, self._kind(kind)).inc()

    def inconclusive(self, cluster: str) -> None:
        """A probe of `cluster` judged nothing: the hub's event loop stalled meanwhile."""
        self._inconclusive.inc()

    def loop_late(self, seconds: float) -> None:
        """The hub's event loop ran a timer `seconds` late (`mcobs.looplag`)."""
        self._loop_lag.observe(seconds)

    def forget(self, cluster: str) -> None:
        """Drop the per-cluster series of a cluster this replica no longer collects
        (it left the configuration, or another replica took it over)."""
        with contextlib.suppress(KeyError):  # never swept here
            self._last_sweep.remove(cluster)
        self._errors.remove_by_labels({"cluster": cluster})


class CatalogLag:
    """How long a cluster's observation took to reach this replica's answers.

    Call `snapshot_applied(snapshot, now)` after the planner took a new
    snapshot; every report that changed since the previous call is observed
    once, as `now - observed_at`.
    """

    def __init__(
        self, registry: CollectorRegistry, buckets: tuple[float, ...] = LAG_BUCKETS
    ) -> None:
        self._lag = _histogram("mcobs_catalog_update_lag_seconds", registry, buckets)
        self._seen: dict[str, float] = {}

    def snapshot_applied(self, snapshot: CatalogSnapshot, now: float) -> None:
        seen: dict[str, float] = {}
        for name, report in snapshot.reports.items():
            seen[name] = report.observed_at
            if self._seen.get(name) != report.observed_at:
                self._lag.observe(max(0.0, now - report.observed_at))
        self._seen = seen
