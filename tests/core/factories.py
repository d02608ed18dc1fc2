"""Small builders for model values used by the core tests."""

from __future__ import annotations

from types import MappingProxyType

from mcobs.model import (
    ApiProbe,
    CatalogSnapshot,
    ClusterReport,
    ClusterService,
    Health,
    HealthState,
    ServiceKey,
    ServicePort,
)

HEALTHY = Health(1.0, HealthState.HEALTHY)
WEB = ServiceKey("default", "web")


def service(
    cluster: str,
    addresses: tuple[str, ...] = ("192.0.2.1",),
    *,
    key: ServiceKey = WEB,
    ready: int = 3,
    total: int = 3,
    annotations: dict[str, str] | None = None,
    ports: tuple[ServicePort, ...] = (ServicePort("http", 80, "TCP"),),
) -> ClusterService:
    return ClusterService(
        cluster=cluster,
        key=key,
        addresses=addresses,
        hostnames=(),
        ports=ports,
        ready_endpoints=ready,
        total_endpoints=total,
        annotations=MappingProxyType({"mcobs.io/global": "true", **(annotations or {})}),
    )


def report(
    cluster: str,
    services: tuple[ClusterService, ...] = (),
    *,
    health: Health = HEALTHY,
    observed_at: float = 1000.0,
    weight: float = 1.0,
    region: str = "r1",
) -> ClusterReport:
    return ClusterReport(
        cluster=cluster,
        region=region,
        observed_at=observed_at,
        probe=ApiProbe(
            reachable=True, latency_s=0.01, readyz_ok=True, nodes_ready=3, nodes_total=3
        ),
        health=health,
        services=services,
        weight=weight,
    )


def snapshot(*reports: ClusterReport, version: int = 7) -> CatalogSnapshot:
    return CatalogSnapshot(MappingProxyType({r.cluster: r for r in reports}), version)
