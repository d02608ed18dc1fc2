"""A fleet of simulated member clusters served on loopback ports.

Each cluster answers the Kubernetes API on one port and the Prometheus API on
another; ports are picked by the OS at `start` and kept until `stop`, through
outages, so clients keep their URLs.
"""

from __future__ import annotations

import os
import secrets
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from mcobs.sim import defaults
from mcobs.sim.cluster import ServiceSpec, SimCluster
from mcobs.sim.errors import SimError, SimNotFound
from mcobs.sim.gate import Mode
from mcobs.sim.kubeapi import WatchSettings, kube_app
from mcobs.sim.kubeconfig import write_kubeconfig
from mcobs.sim.promapi import prom_app
from mcobs.sim.serving import PortServer, local_port
from mcobs.sim.tlscert import self_signed


def _token() -> str:
    return secrets.token_urlsafe(32)


class SimFleet:
    """Simulated clusters and the servers that answer for them."""

    def __init__(
        self,
        clusters: Sequence[SimCluster],
        *,
        host: str = "127.0.0.1",
        watch: WatchSettings | None = None,
        tls: bool = True,
    ) -> None:
        names = [c.name for c in clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be unique: {names}")
        self._clusters = {c.name: c for c in clusters}
        self._by_kube_port: dict[int, SimCluster] = {}
        self._by_prom_port: dict[int, SimCluster] = {}
        self._tls = tls
        self._kube = PortServer(kube_app(self._kube_owner, watch), host=host)
        self._prom = PortServer(prom_app(self._prom_owner), host=host)
        self._started = False

    @classmethod
    def default(
        cls,
        clusters: int = 3,
        *,
        clock: Callable[[], float] = time.time,
        history: int = 1000,
        extra_services: int = 0,
        token: Callable[[], str] = _token,
        watch: WatchSettings | None = None,
        tls: bool = True,
    ) -> SimFleet:
        """`clusters` clusters (`eu-west`, `us-east`, `ap-south`, `sim-04`, ...), each with
        3 Ready nodes, the exported Services `web` and `api` (plus `extra_services` more),
        the unexported `kube-system/internal`, and healthy `up` series.

        The Kubernetes APIs serve HTTPS, each cluster with its own fresh self-signed
        certificate (`SimCluster.ca_pem`, in the kubeconfig), unless `tls` is False:
        kubectl sends bearer tokens only over TLS."""
        if clusters < 0:
            raise ValueError(f"clusters must not be negative, got {clusters}")
        members = []
        for index in range(clusters):
            cluster = SimCluster(
                defaults.cluster_name(index),
                defaults.region(index),
                index,
                token=token(),
                clock=clock,
                history=history,
            )
            defaults.populate(cluster, extra_services=extra_services)
            members.append(cluster)
        return cls(members, watch=watch, tls=tls)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on two free ports per cluster (only reserve them for clusters in outage)."""
        if self._started:
            return
        self._started = True
        await self._kube.start()
        await self._prom.start()
        for cluster in self._clusters.values():
            if self._tls and cluster.tls is None:
                cluster.tls = self_signed(common_name=f"mcobs-sim {cluster.name}")
            context = cluster.tls.server_context() if cluster.tls else None
            cluster.kube_port = await self._kube.open(context)
            cluster.prom_port = await self._prom.open()
            self._by_kube_port[cluster.kube_port] = cluster
            self._by_prom_port[cluster.prom_port] = cluster
            if cluster.gate.mode == "refuse":
                await self._kube.unlisten(cluster.kube_port)
                await self._prom.unlisten(cluster.prom_port)

    async def stop(self) -> None:
        """Cut every stream, close every port."""
        if not self._started:
            return
        self._started = False
        for cluster in self._clusters.values():
            cluster.gate.cut_streams()
        await self._kube.stop()
        await self._prom.stop()
        for cluster in self._clusters.values():
            cluster.kube_port = cluster.prom_port = None
        self._by_kube_port.clear()
        self._by_prom_port.clear()

    async def __aenter__(self) -> SimFleet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- lookup --------------------------------------------------------------------------

    @property
    def clusters(self) -> tuple[SimCluster, ...]:
        return tuple(self._clusters.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._clusters)

    def cluster(self, name: str) -> SimCluster:
        try:
            return self._clusters[name]
        except KeyError:
            raise SimNotFound(f"unknown cluster {name!r}") from None

    def kube_urls(self) -> dict[str, str]:
        return {c.name: c.kube_url for c in self.clusters}

    def prometheus_urls(self) -> dict[str, str]:
        return {c.name: c.prometheus_url for c in self.clusters}

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context trusting every cluster's API server (None over plain HTTP)."""
        bundle = "".join(c.ca_pem for c in self.clusters if c.ca_pem)
        return ssl.create_default_context(cadata=bundle) if bundle else None

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        """A kubeconfig with one context per cluster (named after it); needs `start`."""
        if not self._started:
            raise RuntimeError("start the fleet before writing its kubeconfig")
        return write_kubeconfig(path, self.clusters)

    def _kube_owner(self, request: web.BaseRequest) -> SimCluster | None:
        port = local_port(request)
        return None if port is None else self._by_kube_port.get(port)

    def _prom_owner(self, request: web.BaseRequest) -> SimCluster | None:
        port = local_port(request)
        return None if port is None else self._by_prom_port.get(port)

    # --- faults --------------------------------------------------------------------------

    async def outage(self, name: str, mode: Mode = "refuse") -> None:
        """Stop answering: `refuse` closes both ports (connections refused, streams cut),
        `hang` accepts connections and holds every request until `recover`."""
        if mode not in ("refuse", "hang"):
            raise SimError(f"mode {mode!r} is not one of refuse, hang")
        cluster = self.cluster(name)
        cluster.gate.set(mode)
        if not self._started:
            return
        if mode == "refuse":
            assert cluster.kube_port is not None and cluster.prom_port is not None
            await self._kube.unlisten(cluster.kube_port)
            await self._prom.unlisten(cluster.prom_port)
        else:
            await self._listen(cluster)

    async def recover(self, name: str) -> None:
        """Answer again, on the same ports."""
        cluster = self.cluster(name)
        cluster.gate.set("up")
        if self._started:
            await self._listen(cluster)

    async def _listen(self, cluster: SimCluster) -> None:
        assert cluster.kube_port is not None and cluster.prom_port is not None
        await self._kube.listen(cluster.kube_port)
        await self._prom.listen(cluster.prom_port)

    # --- state changes (validated; SimError leaves the state unchanged) ------------------

    def set_ready(
        self, cluster: str, namespace: str, name: str, ready: int, total: int | None = None
    ) -> None:
        self.cluster(cluster).set_ready(namespace, name, ready, total)

    def set_node_ready(self, cluster: str, node: str, ready: bool) -> None:
        self.cluster(cluster).set_node_ready(node, ready)

    def put_service(self, cluster: str, spec: ServiceSpec) -> None:
        self.cluster(cluster).put_service(spec)

    def delete_service(self, cluster: str, namespace: str, name: str) -> None:
        self.cluster(cluster).delete_service(namespace, name)

    def set_series(
        self, cluster: str, name: str, labels: Mapping[str, str], value: float | None
    ) -> None:
        """Set one Prometheus series (None removes it)."""
        try:
            self.cluster(cluster).series.set(name, labels, value)
        except ValueError as exc:
            if isinstance(exc, SimError):
                raise
            raise SimError(str(exc)) from None

    def pin_query(self, cluster: str, expr: str, value: float | None) -> None:
        """Answer the exact PromQL `expr` with `value` (None: no data) in that cluster."""
        if not expr.strip():
            raise SimError("expr must not be empty")
        self.cluster(cluster).series.pin(expr, value)

    def unpin_query(self, cluster: str, expr: str) -> None:
        self.cluster(cluster).series.unpin(expr)

    def describe(self) -> list[dict[str, Any]]:
        return [c.describe() for c in self.clusters]
