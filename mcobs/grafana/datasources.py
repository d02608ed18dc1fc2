"""The Grafana datasources mcobs provisions: its global-query source and one per cluster."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mcobs.config import Settings
from mcobs.grafana.dashboards import GLOBAL_DATASOURCE_UID
from mcobs.grafana.stamp import Json

MAX_UID = 40
"""Grafana's limit on a uid's length."""
CLUSTER_DATASOURCE_PREFIX = "mcobs-prom-"


@dataclass(frozen=True, slots=True)
class ClusterPrometheus:
    cluster: str
    url: str


@dataclass(frozen=True, slots=True)
class DatasourceSpec:
    uid: str
    name: str
    url: str
    type: str = "prometheus"
    access: str = "proxy"
    json_data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def api_body(self) -> Json:
        """The body of `POST /api/datasources` and `PUT /api/datasources/uid/{uid}`."""
        return {
            "uid": self.uid,
            "name": self.name,
            "type": self.type,
            "access": self.access,
            "url": self.url,
            "isDefault": False,
            "jsonData": dict(self.json_data),
        }

    def provisioning(self) -> Json:
        """The entry in a Grafana datasource provisioning file."""
        return {
            "name": self.name,
            "uid": self.uid,
            "type": self.type,
            "access": self.access,
            "url": self.url,
            "isDefault": False,
            "editable": False,
            "jsonData": dict(self.json_data),
        }


def cluster_datasource_uid(cluster: str) -> str:
    """`mcobs-prom-<cluster>`; Grafana limits uids to 40 characters, so a longer name
    is cut and given a hash suffix."""
    uid = CLUSTER_DATASOURCE_PREFIX + cluster
    if len(uid) <= MAX_UID:
        return uid
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return uid[: MAX_UID - 9] + "-" + digest


def global_datasource(mcobs_url: str) -> DatasourceSpec:
    """The mcobs global-query datasource: Prometheus' query API served by mcobs."""
    return DatasourceSpec(
        uid=GLOBAL_DATASOURCE_UID,
        name="mcobs",
        url=mcobs_url.rstrip("/"),
        json_data=MappingProxyType({"httpMethod": "GET", "timeInterval": "15s"}),
    )


def cluster_datasource(cluster: ClusterPrometheus) -> DatasourceSpec:
    return DatasourceSpec(
        uid=cluster_datasource_uid(cluster.cluster),
        name=f"mcobs {cluster.cluster} Prometheus",
        url=cluster.url.rstrip("/"),
        json_data=MappingProxyType({"httpMethod": "POST"}),
    )


def desired_datasources(
    mcobs_url: str, clusters: Iterable[ClusterPrometheus] = ()
) -> tuple[DatasourceSpec, ...]:
    """The global-query datasource, then one per cluster Prometheus (sorted by cluster)."""
    per_cluster = sorted(clusters, key=lambda c: c.cluster)
    return (global_datasource(mcobs_url), *(cluster_datasource(c) for c in per_cluster))


def cluster_prometheus(settings: Settings) -> tuple[ClusterPrometheus, ...]:
    """The clusters of a configuration that name a Prometheus."""
    return tuple(
        ClusterPrometheus(c.name, str(c.prometheus_url))
        for c in settings.clusters
        if c.prometheus_url is not None
    )
