"""Kubernetes JSON objects -> slim values, at the edge (no I/O here).

Only the fields mcobs needs survive, and each is validated: an address that is
not an IP literal, a port out of range, or a malformed object is dropped and
named in `problems`, never passed on.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mcobs.annotations import is_exported, mcobs_annotations
from mcobs.model import ClusterService, ServiceKey, ServicePort

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})


class ObjectError(ValueError):
    """The object lacks what every object of its kind has (name, namespace)."""


@dataclass(frozen=True, slots=True)
class SlimService:
    key: ServiceKey
    exported: bool
    addresses: tuple[str, ...]
    hostnames: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    annotations: Mapping[str, str]
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SlimSlice:
    service: ServiceKey | None
    ready: int
    total: int


def object_id(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of any object; cluster-scoped objects have namespace ''."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise ObjectError("object without metadata.name")
    namespace = meta.get("namespace", "")
    if not isinstance(namespace, str):
        raise ObjectError("metadata.namespace is not a string")
    return namespace, meta["name"]


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _ingress(status: Any, problems: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    addresses: list[str] = []
    hostnames: list[str] = []
    entries = (status or {}).get("loadBalancer", {}).get("ingress") or []
    if not isinstance(entries, list):
        problems.append("status.loadBalancer.ingress is not a list")
        return (), ()
    for entry in entries:
        if not isinstance(entry, Mapping):
            problems.append("status.loadBalancer.ingress entry is not an object")
            continue
        if ip := entry.get("ip"):
            try:
                canonical = str(ipaddress.ip_address(str(ip)))
            except ValueError:
                problems.append(f"load balancer ip {str(ip)[:64]!r} is not an IP address")
            else:
                if canonical not in addresses:
                    addresses.append(canonical)
        elif host := entry.get("hostname"):
            name = str(host).lower().rstrip(".")
            if _HOSTNAME.fullmatch(name):
                hostnames.append(name)
            else:
                problems.append(f"load balancer hostname {str(host)[:64]!r} is not valid")
    return tuple(addresses), tuple(hostnames)


def _ports(spec: Mapping[str, Any], problems: list[str]) -> tuple[ServicePort, ...]:
    ports: list[ServicePort] = []
    raw = spec.get("ports") or []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, Mapping):
            continue
        number = entry.get("port")
        protocol = str(entry.get("protocol") or "TCP").upper()
        name = entry.get("name") or ""
        if not isinstance(number, int) or not 0 < number < 65536 or protocol not in _PROTOCOLS:
            problems.append(f"port {str(entry)[:80]} is invalid")
            continue
        ports.append(ServicePort(str(name), number, protocol))
    return tuple(ports)


def to_service(obj: Mapping[str, Any]) -> SlimService:
    namespace, name = object_id(obj)
    meta = obj["metadata"]
    annotations = mcobs_annotations(_string_map(meta.get("annotations")))
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    problems: list[str] = []
    addresses, hostnames = _ingress(obj.get("status"), problems)
    return SlimService(
        key=ServiceKey(namespace, name),
        exported=is_exported(annotations),
        addresses=addresses,
        hostnames=hostnames,
        ports=_ports(spec or {}, problems),
        annotations=annotations,
        problems=tuple(problems),
    )


def to_slice(obj: Mapping[str, Any]) -> SlimSlice:
    namespace, _ = object_id(obj)
    labels = _string_map(obj["metadata"].get("labels"))
    owner = labels.get(SERVICE_NAME_LABEL)
    endpoints = obj.get("endpoints") or []
    ready = total = 0
    for endpoint in endpoints if isinstance(endpoints, list) else []:
        if not isinstance(endpoint, Mapping):
            continue
        total += 1
        conditions = endpoint.get("conditions") or {}
        # Per the EndpointSlice API, a missing `ready` condition means ready.
        if conditions.get("ready", True) is not False:
            ready += 1
    return SlimSlice(ServiceKey(namespace, owner) if owner else None, ready, total)


def node_ready(obj: Mapping[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def cluster_services(
    cluster: str, services: Iterable[SlimService], slices: Iterable[SlimSlice]
) -> tuple[ClusterService, ...]:
    """The exported services of one cluster, with endpoint counts from its slices."""
    ready: dict[ServiceKey, int] = {}
    total: dict[ServiceKey, int] = {}
    for slice_ in slices:
        if slice_.service is not None:
            ready[slice_.service] = ready.get(slice_.service, 0) + slice_.ready
            total[slice_.service] = total.get(slice_.service, 0) + slice_.total
    return tuple(
        ClusterService(
            cluster=cluster,
            key=s.key,
            addresses=s.addresses,
            hostnames=s.hostnames,
            ports=s.ports,
            ready_endpoints=ready.get(s.key, 0),
            total_endpoints=total.get(s.key, 0),
            annotations=s.annotations,
            problems=s.problems,
        )
        for s in sorted(services, key=lambda s: s.key)
        if s.exported
    )
