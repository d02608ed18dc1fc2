"""Kubernetes JSON for the simulator's objects: objects, lists, Tables and Statuses.

The shapes are those of a real API server (v1.32), so the official clients and
kubectl decode them. Pure functions; `now` is passed in for the AGE column.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

from mcobs.sim.state import EndpointSlice, Meta, Node, Obj, Port, Resource, Service

Json: TypeAlias = dict[str, Any]

KINDS: dict[Resource, tuple[str, str]] = {
    "nodes": ("Node", "v1"),
    "services": ("Service", "v1"),
    "endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
}


def timestamp(unix: float) -> str:
    return datetime.fromtimestamp(int(unix), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_age(seconds: float) -> str:
    """Kubernetes' short age, as in `kubectl get` (`45s`, `3m12s`, `5h`, `12d`)."""
    s = int(seconds)
    if s < 0:
        return "0s"
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 192:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 730:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 2920 else f"{d // 365}y"


def metadata(meta: Meta) -> Json:
    out: Json = {"name": meta.name}
    if meta.namespace:
        out["namespace"] = meta.namespace
    out["uid"] = meta.uid
    out["resourceVersion"] = str(meta.resource_version)
    out["creationTimestamp"] = timestamp(meta.created)
    if meta.labels:
        out["labels"] = dict(meta.labels)
    if meta.annotations:
        out["annotations"] = dict(meta.annotations)
    return out


def _node(node: Node) -> Json:
    since = timestamp(node.meta.created)
    ready = {
        "type": "Ready",
        "status": "True" if node.ready else "False",
        "lastHeartbeatTime": since,
        "lastTransitionTime": since,
        "reason": "KubeletReady" if node.ready else "KubeletNotReady",
        "message": "kubelet is posting ready status" if node.ready else "container runtime down",
    }
    return {
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "conditions": [ready],
            "addresses": [
                {"type": "InternalIP", "address": node.internal_ip},
                {"type": "Hostname", "address": node.meta.name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": node.meta.uid,
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.1.0-sim",
                "kubeProxyVersion": node.kubelet_version,
                "kubeletVersion": node.kubelet_version,
                "machineID": node.meta.uid.replace("-", ""),
                "operatingSystem": "linux",
                "osImage": "mcobs simulated node",
                "systemUUID": node.meta.uid,
            },
        },
    }


def _service_port(port: Port) -> Json:
    out: Json = {"port": port.port, "protocol": port.protocol}
    if port.name:
        out["name"] = port.name
    out["targetPort"] = port.target_port or port.port
    return out


def _service(svc: Service) -> Json:
    spec: Json = {
        "type": svc.type,
        "clusterIP": svc.cluster_ip,
        "clusterIPs": [svc.cluster_ip],
        "ports": [_service_port(p) for p in svc.ports],
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    }
    if svc.selector:
        spec["selector"] = dict(svc.selector)
    if svc.type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = False
        spec["externalTrafficPolicy"] = "Cluster"
    ingress: list[Json] = [{"ip": ip, "ipMode": "VIP"} for ip in svc.ingress_ips]
    ingress += [{"hostname": host} for host in svc.ingress_hostnames]
    status: Json = {"loadBalancer": {"ingress": ingress} if ingress else {}}
    return {"spec": spec, "status": status}


def _slice(es: EndpointSlice) -> Json:
    endpoints = [
        {
            "addresses": [e.address],
            "conditions": {"ready": e.ready, "serving": e.ready, "terminating": False},
            "nodeName": e.node_name,
            "targetRef": {
                "kind": "Pod",
                "namespace": es.meta.namespace,
                "name": f"{es.meta.labels.get('kubernetes.io/service-name', 'pod')}-{i}",
            },
        }
        for i, e in enumerate(es.endpoints)
    ]
    ports = [
        {"name": p.name, "port": p.target_port or p.port, "protocol": p.protocol} for p in es.ports
    ]
    return {"addressType": es.address_type, "endpoints": endpoints, "ports": ports}


def to_json(obj: Obj, *, with_kind: bool = True) -> Json:
    """The object as the API server serves it (lists leave out each item's kind)."""
    if isinstance(obj, Node):
        kind, body = KINDS["nodes"], _node(obj)
    elif isinstance(obj, Service):
        kind, body = KINDS["services"], _service(obj)
    else:
        kind, body = KINDS["endpointslices"], _slice(obj)
    head: Json = {"kind": kind[0], "apiVersion": kind[1]} if with_kind else {}
    return {**head, "metadata": metadata(obj.meta), **body}


def to_list(resource: Resource, resource_version: int, items: Sequence[Obj]) -> Json:
    kind, api_version = KINDS[resource]
    return {
        "kind": f"{kind}List",
        "apiVersion": api_version,
        "metadata": {"resourceVersion": str(resource_version)},
        "items": [to_json(o, with_kind=False) for o in items],
    }


def status(code: int, reason: str, message: str, details: Json | None = None) -> Json:
    """A `Status` object, the body of every API error."""
    out: Json = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        out["details"] = details
    return out


# --- Tables (server-side printing for kubectl get) ---------------------------------------

_COLUMNS: dict[Resource, list[tuple[str, str, str, int]]] = {
    "nodes": [
        ("Name", "string", "name", 0),
        ("Status", "string", "", 0),
        ("Roles", "string", "", 0),
        ("Age", "string", "", 0),
        ("Version", "string", "", 0),
        ("Internal-IP", "string", "", 1),
    ],
    "services": [
        ("Name", "string", "name", 0),
        ("Type", "string", "", 0),
        ("Cluster-IP", "string", "", 0),
        ("External-IP", "string", "", 0),
        ("Port(s)", "string", "", 0),
        ("Age", "string", "", 0),
        ("Selector", "string", "", 1),
    ],
    "endpointslices": [
        ("Name", "string", "name", 0),
        ("AddressType", "string", "", 0),
        ("Ports", "string", "", 0),
        ("Endpoints", "string", "", 0),
        ("Age", "string", "", 0),
    ],
}


def _cells(obj: Obj, now: float) -> list[Any]:
    age = human_age(now - obj.meta.created)
    if isinstance(obj, Node):
        status_ = "Ready" if obj.ready else "NotReady"
        return [obj.meta.name, status_, "<none>", age, obj.kubelet_version, obj.internal_ip]
    if isinstance(obj, Service):
        external = ",".join([*obj.ingress_ips, *obj.ingress_hostnames])
        if not external:
            external = "<pending>" if obj.type == "LoadBalancer" else "<none>"
        ports = ",".join(f"{p.port}/{p.protocol}" for p in obj.ports) or "<none>"
        selector = ",".join(f"{k}={v}" for k, v in sorted(obj.selector.items())) or "<none>"
        return [obj.meta.name, obj.type, obj.cluster_ip, external, ports, age, selector]
    ports = ",".join(str(p.target_port or p.port) for p in obj.ports) or "<unset>"
    addresses = [e.address for e in obj.endpoints]
    shown = ",".join(addresses[:3]) + (
        f" + {len(addresses) - 3} more..." if len(addresses) > 3 else ""
    )
    return [obj.meta.name, obj.address_type, ports, shown or "<unset>", age]


def _partial(obj: Obj) -> Json:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata(obj.meta),
    }


def to_table(
    resource: Resource,
    resource_version: int | None,
    items: Sequence[Obj],
    *,
    now: float,
    include_object: str = "Metadata",
) -> Json:
    """A `meta.k8s.io/v1` Table; `include_object` is None, Metadata or Object."""
    rows = []
    for obj in items:
        row: Json = {"cells": _cells(obj, now)}
        if include_object == "Object":
            row["object"] = to_json(obj)
        elif include_object != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    meta: Json = {} if resource_version is None else {"resourceVersion": str(resource_version)}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {"name": name, "type": typ, "format": fmt, "description": name, "priority": prio}
            for name, typ, fmt, prio in _COLUMNS[resource]
        ],
        "rows": rows,
    }
