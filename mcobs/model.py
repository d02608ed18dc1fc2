"""Frozen values that flow through mcobs, from collector to catalog to DNS.

No I/O imports here: collectors convert Kubernetes and Prometheus payloads into
these types at the edge, the catalog stores them, and the pure core (health,
answer selection) reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    DRAINED = "drained"
    """Taken out of answers by a person (`mcobs drain`), whatever its health."""
    UNKNOWN = "unknown"

    @property
    def serves(self) -> bool:
        """Whether a cluster in this state may appear in normal DNS answers."""
        return self in (HealthState.HEALTHY, HealthState.DEGRADED)


@dataclass(frozen=True, slots=True)
class Health:
    score: float
    """0.0 (dead) to 1.0 (perfect)."""
    state: HealthState
    reasons: tuple[str, ...] = ()


UNKNOWN_HEALTH = Health(0.0, HealthState.UNKNOWN, ("never observed",))


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    protocol: str
    """TCP, UDP or SCTP, as Kubernetes spells it."""


@dataclass(frozen=True, slots=True)
class ClusterService:
    """One cluster's view of one exported Service."""

    cluster: str
    key: ServiceKey
    addresses: tuple[str, ...]
    """Validated IPv4/IPv6 literals of the LoadBalancer ingress, in canonical form."""
    hostnames: tuple[str, ...]
    """LoadBalancer ingress hostnames (cloud load balancers)."""
    ports: tuple[ServicePort, ...]
    ready_endpoints: int
    total_endpoints: int
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The Service's `mcobs.io/` annotations, verbatim; parsed by `mcobs.annotations`."""
    problems: tuple[str, ...] = ()
    """What the collector dropped while converting (invalid addresses, bad annotations)."""
    health: Health | None = None
    """This service's own health in this cluster (probes, per-service signals); None
    when nothing checks it beyond endpoint readiness."""


@dataclass(frozen=True, slots=True)
class ApiProbe:
    """What one sweep saw of a cluster's Kubernetes API."""

    reachable: bool
    latency_s: float | None = None
    readyz_ok: bool | None = None
    nodes_ready: int = 0
    nodes_total: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """One Prometheus signal of a cluster; `value` is None when it could not be read."""

    name: str
    value: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterReport:
    """Everything mcobs knows about one cluster; replaced as a whole in the catalog."""

    cluster: str
    region: str
    observed_at: float
    """Unix time of the observation (injected clock)."""
    probe: ApiProbe
    health: Health
    services: tuple[ClusterService, ...] = ()
    signals: tuple[Signal, ...] = ()
    weight: float = 1.0
    priority: int = 0
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    services_synced: bool = True
    """False when `services` is the last known list rather than a fresh one."""


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """A whole cluster (`service` None) or one service in one cluster."""

    cluster: str
    service: ServiceKey | None = None

    def __str__(self) -> str:
        return self.cluster if self.service is None else f"{self.cluster}/{self.service}"

    def covers(self, cluster: str, service: ServiceKey | None) -> bool:
        """Whether this scope includes `service` in `cluster` (or the cluster itself)."""
        return self.cluster == cluster and self.service in (None, service)


@dataclass(frozen=True, slots=True)
class Drain:
    """A person's override: keep a scope out of answers, with a reason."""

    scope: Scope
    reason: str
    created_at: float
    expires_at: float | None = None
    by: str = ""

    def active(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class AlertMark:
    """A firing Alertmanager alert that degrades or downs a scope until it resolves."""

    fingerprint: str
    scope: Scope
    name: str
    severity: str
    down: bool
    """True: the scope is down; False: degraded."""
    starts_at: float
    ends_at: float | None = None
    summary: str = ""

    def active(self, now: float) -> bool:
        return self.ends_at is None or now < self.ends_at


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """A consistent view of every cluster's latest report and every override."""

    reports: Mapping[str, ClusterReport]
    version: int = 0
    """Grows with every change of the store (restarts with an empty Redis)."""
    drains: Mapping[str, Drain] = field(default_factory=lambda: MappingProxyType({}))
    """By `str(scope)`."""
    alerts: Mapping[str, AlertMark] = field(default_factory=lambda: MappingProxyType({}))
    """By fingerprint."""


EMPTY_SNAPSHOT = CatalogSnapshot(MappingProxyType({}), 0)
