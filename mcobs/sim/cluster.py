"""One simulated member cluster: its Kubernetes objects, its series, its availability.

The operations here are what the control API and the tests call: add a Service
(with its EndpointSlice), change how many endpoints are ready, flip a node's
readiness. Each validates its input first and changes nothing when refusing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mcobs.sim.errors import SimError, SimNotFound
from mcobs.sim.gate import Gate
from mcobs.sim.series import SeriesStore
from mcobs.sim.state import (
    EMPTY,
    Endpoint,
    EndpointSlice,
    KubeStore,
    Meta,
    Node,
    Port,
    Service,
    frozen_map,
)
from mcobs.sim.tlscert import SelfSigned

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ENDPOINTS = 1000
DEFAULT_ENDPOINTS = 3

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_POD_NET = int(ipaddress.IPv4Address("10.128.0.0"))
_SERVICE_NET = int(ipaddress.IPv4Address("10.96.0.0"))


def _is_label(value: str, pattern: re.Pattern[str] = _DNS1123_LABEL) -> bool:
    return len(value) <= 63 and pattern.fullmatch(value) is not None


def _is_hostname(value: str) -> bool:
    return len(value) <= 253 and all(_is_label(part) for part in value.split("."))


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A Service as the control API describes it; becomes a Service and an EndpointSlice."""

    namespace: str
    name: str
    type: str = "LoadBalancer"
    ports: tuple[Port, ...] = (Port("http", 80),)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    addresses: tuple[str, ...] = ()
    """Load-balancer ingress IP literals (LoadBalancer only)."""
    hostnames: tuple[str, ...] = ()
    """Load-balancer ingress hostnames (LoadBalancer only)."""
    endpoints: int | None = None
    """Number of endpoints; None keeps the current number (3 for a new Service)."""
    ready: int | None = None
    """Ready endpoints; None keeps the current number, capped (all, for a new Service)."""

    def problems(self) -> list[str]:
        """Every reason this spec is invalid, each naming its field."""
        found: list[str] = []
        if not _is_label(self.namespace):
            found.append(f"namespace {self.namespace!r} is not a DNS-1123 label")
        if not _is_label(self.name, _DNS1035_LABEL):
            found.append(f"name {self.name!r} is not a DNS-1035 label")
        if self.type not in SERVICE_TYPES:
            found.append(f"type {self.type!r} is not one of {', '.join(SERVICE_TYPES)}")
        found += _port_problems(self.ports)
        for i, address in enumerate(self.addresses):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                found.append(f"addresses[{i}]: {address!r} is not an IP address")
        for i, host in enumerate(self.hostnames):
            if not _is_hostname(host):
                found.append(f"hostnames[{i}]: {host!r} is not a DNS name")
        if (self.addresses or self.hostnames) and self.type in ("ClusterIP", "NodePort"):
            found.append("addresses/hostnames: only a LoadBalancer Service has ingress addresses")
        found += count_problems(self.endpoints, self.ready)
        return found


def _port_problems(ports: tuple[Port, ...]) -> list[str]:
    found: list[str] = []
    if not ports:
        found.append("ports: a Service needs at least one port")
    names = [p.name for p in ports]
    for i, p in enumerate(ports):
        where = f"ports[{i}]"
        if not 1 <= p.port <= 65535:
            found.append(f"{where}.port: {p.port} is not in 1..65535")
        if p.target_port is not None and not 1 <= p.target_port <= 65535:
            found.append(f"{where}.targetPort: {p.target_port} is not in 1..65535")
        if p.protocol not in PROTOCOLS:
            found.append(f"{where}.protocol: {p.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if p.name and not _is_label(p.name):
            found.append(f"{where}.name: {p.name!r} is not a DNS-1123 label")
        if len(ports) > 1 and not p.name:
            found.append(f"{where}.name: required when a Service has several ports")
        elif p.name and names.count(p.name) > 1 and names.index(p.name) == i:
            found.append(f"{where}.name: {p.name!r} is used more than once")
    return found


def count_problems(endpoints: int | None, ready: int | None) -> list[str]:
    found: list[str] = []
    if endpoints is not None and not 0 <= endpoints <= MAX_ENDPOINTS:
        found.append(f"endpoints: {endpoints} is not in 0..{MAX_ENDPOINTS}")
    if ready is not None and ready < 0:
        found.append(f"ready: {ready} is negative")
    elif ready is not None and endpoints is not None and ready > endpoints:
        found.append(f"ready: {ready} is more than the {endpoints} endpoints")
    return found


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A Service with its endpoint counts, as the control API lists it."""

    service: Service
    ready: int
    endpoints: int

    @property
    def namespace(self) -> str:
        return self.service.meta.namespace

    @property
    def name(self) -> str:
        return self.service.meta.name

    @property
    def type(self) -> str:
        return self.service.type

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.service.meta.annotations

    @property
    def ports(self) -> tuple[Port, ...]:
        return self.service.ports

    @property
    def addresses(self) -> tuple[str, ...]:
        """Load-balancer ingress IPs (IPv4 first, then IPv6, for the default Services)."""
        return self.service.ingress_ips

    @property
    def hostnames(self) -> tuple[str, ...]:
        return self.service.ingress_hostnames


class SimCluster:
    """The state of one simulated cluster; servers are attached by `SimFleet`."""

    __slots__ = (
        "_slots",
        "clock",
        "gate",
        "index",
        "kube",
        "kube_port",
        "name",
        "prom_port",
        "region",
        "series",
        "tls",
        "token",
    )

    def __init__(
        self,
        name: str,
        region: str,
        index: int,
        *,
        token: str,
        clock: Callable[[], float],
        history: int = 1000,
    ) -> None:
        self.name = name
        self.region = region
        self.index = index
        self.token = token
        self.clock = clock
        self.kube = KubeStore(clock=clock, history=history, uid_seed=name)
        self.series = SeriesStore()
        self.gate = Gate()
        self.kube_port: int | None = None
        self.tls: SelfSigned | None = None
        """The certificate of the Kubernetes API; None: plain HTTP."""
        self.prom_port: int | None = None
        self._slots: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:  # never shows the token
        return f"SimCluster({self.name!r}, region={self.region!r}, mode={self.gate.mode!r})"

    @property
    def kube_url(self) -> str:
        if self.kube_port is None:
            raise RuntimeError(f"cluster {self.name} has not been started")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.kube_port}"

    @property
    def ca_pem(self) -> str | None:
        """The certificate clients must trust for `kube_url` (None over plain HTTP)."""
        return self.tls.cert_pem if self.tls else None

    @property
    def prometheus_url(self) -> str:
        if self.prom_port is None:
            raise RuntimeError(f"cluster {self.name} has not been started")
        return f"http://127.0.0.1:{self.prom_port}"

    # --- nodes ---------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        return [n for n in self.kube.items("nodes") if isinstance(n, Node)]

    def add_node(
        self, name: str, *, ready: bool = True, labels: Mapping[str, str] | None = None
    ) -> None:
        if not _is_hostname(name):
            raise SimError(f"node name {name!r} is not a DNS name")
        number = len(self.kube.items("nodes")) + 1
        meta = Meta(
            name=name, labels=frozen_map({"kubernetes.io/hostname": name, **(labels or {})})
        )
        self.kube.put(Node(meta, ready=ready, internal_ip=f"10.0.{self.index % 256}.{number}"))

    def set_node_ready(self, name: str, ready: bool) -> None:
        node = self.kube.get("nodes", "", name)
        if not isinstance(node, Node):
            raise SimNotFound(f"node {name!r} not found in cluster {self.name}")
        self.kube.put(replace(node, ready=ready))

    # --- services ------------------------------------------------------------------------

    def service(self, namespace: str, name: str) -> Service:
        svc = self.kube.get("services", namespace, name)
        if not isinstance(svc, Service):
            raise SimNotFound(f"service {namespace}/{name} not found in cluster {self.name}")
        return svc

    def endpoint_slice(self, namespace: str, name: str) -> EndpointSlice | None:
        found = self.kube.get("endpointslices", namespace, self._slice_name(namespace, name))
        return found if isinstance(found, EndpointSlice) else None

    def put_service(self, spec: ServiceSpec) -> None:
        """Create or replace a Service and its EndpointSlice."""
        problems = spec.problems()
        if problems:
            raise SimError(problems)
        slice_ = self.endpoint_slice(spec.namespace, spec.name)
        current_total = len(slice_.endpoints) if slice_ else DEFAULT_ENDPOINTS
        current_ready = sum(e.ready for e in slice_.endpoints) if slice_ else None
        total = current_total if spec.endpoints is None else spec.endpoints
        if spec.ready is not None:
            if spec.ready > total:
                raise SimError(f"ready: {spec.ready} is more than the {total} endpoints")
            ready = spec.ready
        else:
            ready = total if current_ready is None else min(current_ready, total)
        key = (spec.namespace, spec.name)
        slot = self._slots.setdefault(key, len(self._slots))
        cluster_ip = str(ipaddress.IPv4Address(_SERVICE_NET + 10 + slot))
        lb = spec.type == "LoadBalancer"
        meta = Meta(
            name=spec.name,
            namespace=spec.namespace,
            labels=frozen_map(spec.labels),
            annotations=frozen_map(spec.annotations),
        )
        self.kube.put(
            Service(
                meta,
                type=spec.type,
                cluster_ip=cluster_ip,
                ports=spec.ports,
                selector=frozen_map({"app": spec.name}),
                ingress_ips=spec.addresses if lb else (),
                ingress_hostnames=spec.hostnames if lb else (),
            )
        )
        self._put_slice(spec.namespace, spec.name, spec.ports, total, ready)

    def delete_service(self, namespace: str, name: str) -> None:
        self.service(namespace, name)
        self.kube.delete("endpointslices", namespace, self._slice_name(namespace, name))
        self.kube.delete("services", namespace, name)

    def set_ready(self, namespace: str, name: str, ready: int, total: int | None = None) -> None:
        """Make `ready` of the Service's endpoints ready (and resize to `total` if given)."""
        svc = self.service(namespace, name)
        slice_ = self.endpoint_slice(namespace, name)
        current = len(slice_.endpoints) if slice_ else 0
        problems = count_problems(total, ready)
        if total is None and ready > current:
            problems.append(f"ready: {ready} is more than the {current} endpoints")
        if problems:
            raise SimError(problems)
        self._put_slice(namespace, name, svc.ports, current if total is None else total, ready)

    def services(self) -> list[ServiceView]:
        views = []
        for svc in self.kube.items("services"):
            assert isinstance(svc, Service)
            slice_ = self.endpoint_slice(svc.meta.namespace, svc.meta.name)
            endpoints = slice_.endpoints if slice_ else ()
            views.append(ServiceView(svc, sum(e.ready for e in endpoints), len(endpoints)))
        return views

    def _slice_name(self, namespace: str, name: str) -> str:
        digest = hashlib.sha256(f"{self.name}/{namespace}/{name}".encode()).hexdigest()
        return f"{name}-{digest[:5]}"

    def _put_slice(
        self, namespace: str, name: str, ports: tuple[Port, ...], total: int, ready: int
    ) -> None:
        slot = self._slots.setdefault((namespace, name), len(self._slots))
        nodes = [n.meta.name for n in self.nodes()]
        endpoints = tuple(
            Endpoint(
                address=str(ipaddress.IPv4Address(_POD_NET + slot * 1024 + n + 1)),
                ready=n < ready,
                node_name=nodes[n % len(nodes)] if nodes else "",
            )
            for n in range(total)
        )
        labels = {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: "endpointslice-controller.k8s.io"}
        meta = Meta(
            name=self._slice_name(namespace, name), namespace=namespace, labels=frozen_map(labels)
        )
        self.kube.put(EndpointSlice(meta, address_type="IPv4", endpoints=endpoints, ports=ports))

    # --- description ---------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The cluster's state as JSON-ready data (never the token)."""
        return {
            "name": self.name,
            "region": self.region,
            "index": self.index,
            "mode": self.gate.mode,
            "kube_url": self.kube_url if self.kube_port else None,
            "prometheus_url": self.prometheus_url if self.prom_port else None,
            "resource_version": self.kube.resource_version,
            "nodes": [{"name": n.meta.name, "ready": n.ready} for n in self.nodes()],
            "services": [
                {
                    "namespace": v.namespace,
                    "name": v.name,
                    "type": v.type,
                    "annotations": dict(v.annotations),
                    "labels": dict(v.service.meta.labels),
                    "ports": [
                        {"name": p.name, "port": p.port, "protocol": p.protocol} for p in v.ports
                    ],
                    "addresses": list(v.addresses),
                    "hostnames": list(v.hostnames),
                    "endpoints": v.endpoints,
                    "ready": v.ready,
                }
                for v in self.services()
            ],
            "series": [
                {"name": s.name, "labels": dict(s.labels), "value": s.value}
                for s in self.series.samples()
            ],
            "pins": self.series.pins(),
        }
