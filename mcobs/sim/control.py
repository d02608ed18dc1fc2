"""The simulator's control API, mounted by the hub under `/api/v1/sim/`.

    GET    /api/v1/sim/clusters                                   every cluster's state
    GET    /api/v1/sim/clusters/{cluster}                         one cluster's state
    POST   /api/v1/sim/clusters/{cluster}/outage       optional {"mode": "refuse"|"hang"}
    POST   /api/v1/sim/clusters/{cluster}/recover
    PUT    /api/v1/sim/clusters/{cluster}/services/{ns}/{name}    a Service (see `parse_service`)
    DELETE /api/v1/sim/clusters/{cluster}/services/{ns}/{name}
    POST   /api/v1/sim/clusters/{cluster}/services/{ns}/{name}/ready  {"ready": N, "total": M?}
    POST   /api/v1/sim/clusters/{cluster}/nodes/{node}/ready      {"ready": true|false}
    POST   /api/v1/sim/clusters/{cluster}/prometheus   {"expr": "...", "value": 0.2|null}
                                                       or {"expr": "...", "unpin": true}
                                                       or {"series": [{"name", "labels", "value"}]}
    GET    /api/v1/sim/churn                                      the churn, if one runs

Bad input gets 400 (404 for an unknown cluster, service or node) with
`{"error": "...", "reasons": [...]}` naming every problem; the state is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard

from aiohttp import web

from mcobs.sim.churn import Churn
from mcobs.sim.cluster import ServiceSpec, SimCluster
from mcobs.sim.errors import SimError, SimNotFound
from mcobs.sim.fleet import SimFleet
from mcobs.sim.series import label_problems
from mcobs.sim.state import Port, frozen_map

PREFIX = "/api/v1/sim"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unknown_keys(body: dict[str, Any], known: set[str]) -> list[str]:
    return [f"{key}: unknown field" for key in sorted(set(body) - known)]


def _string_map(body: dict[str, Any], key: str, reasons: list[str]) -> dict[str, str]:
    value = body.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        reasons.append(f"{key}: must be an object of strings")
        return {}
    return value


def _string_list(body: dict[str, Any], key: str, reasons: list[str]) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        reasons.append(f"{key}: must be a list of strings")
        return ()
    return tuple(value)


def _optional_int(body: dict[str, Any], key: str, reasons: list[str]) -> int | None:
    value = body.get(key)
    if value is not None and not _is_int(value):
        reasons.append(f"{key}: {value!r} is not a whole number")
        return None
    return value


def _ports(value: Any, reasons: list[str]) -> tuple[Port, ...]:
    if not isinstance(value, list) or not value:
        reasons.append("ports: must be a non-empty list of {name, port, protocol}")
        return ()
    ports = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            reasons.append(f"ports[{i}]: must be an object")
            continue
        reasons += [
            f"ports[{i}].{r}"
            for r in _unknown_keys(item, {"name", "port", "protocol", "targetPort"})
        ]
        name, port = item.get("name", ""), item.get("port")
        protocol, target = item.get("protocol", "TCP"), item.get("targetPort")
        if not isinstance(name, str):
            reasons.append(f"ports[{i}].name: must be a string")
        if not _is_int(port):
            reasons.append(f"ports[{i}].port: {port!r} is not a whole number")
        if not isinstance(protocol, str):
            reasons.append(f"ports[{i}].protocol: must be a string")
        if target is not None and not _is_int(target):
            reasons.append(f"ports[{i}].targetPort: {target!r} is not a whole number")
        if isinstance(name, str) and _is_int(port) and isinstance(protocol, str):
            ports.append(Port(name, port, protocol, target if _is_int(target) else None))
    return tuple(ports)


def parse_service(namespace: str, name: str, body: dict[str, Any]) -> ServiceSpec:
    """A ServiceSpec from a control API body; raises SimError with every problem.

    Fields: type (LoadBalancer), ports ([{name: http, port: 80, protocol: TCP}]),
    annotations, labels, addresses (LB IPs), hostnames (LB names), endpoints, ready.
    """
    known = {
        "type",
        "ports",
        "annotations",
        "labels",
        "addresses",
        "hostnames",
        "endpoints",
        "ready",
    }
    reasons = _unknown_keys(body, known)
    kind = body.get("type", "LoadBalancer")
    if not isinstance(kind, str):
        reasons.append("type: must be a string")
    ports = _ports(body["ports"], reasons) if "ports" in body else (Port("http", 80),)
    spec = ServiceSpec(
        namespace=namespace,
        name=name,
        type=kind if isinstance(kind, str) else "LoadBalancer",
        ports=ports,
        annotations=frozen_map(_string_map(body, "annotations", reasons)),
        labels=frozen_map(_string_map(body, "labels", reasons)),
        addresses=_string_list(body, "addresses", reasons),
        hostnames=_string_list(body, "hostnames", reasons),
        endpoints=_optional_int(body, "endpoints", reasons),
        ready=_optional_int(body, "ready", reasons),
    )
    ports_reported = any(r.startswith("ports") for r in reasons)
    reasons += [r for r in spec.problems() if not (ports_reported and r.startswith("ports:"))]
    if reasons:
        raise SimError(reasons)
    return spec


async def _json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    text = await request.text()
    if not text.strip():
        if required:
            raise SimError("a JSON object body is required")
        return {}
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise SimError(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SimError("body must be a JSON object")
    return body


def _error(exc: SimError) -> web.Response:
    status = 404 if isinstance(exc, SimNotFound) else 400
    return web.json_response({"error": str(exc), "reasons": list(exc.reasons)}, status=status)


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as exc:
            return _error(exc)

    return guarded


def _service_state(cluster: SimCluster, namespace: str, name: str) -> dict[str, Any]:
    for svc in cluster.describe()["services"]:
        if svc["namespace"] == namespace and svc["name"] == name:
            return {"cluster": cluster.name, **svc}
    return {"cluster": cluster.name, "namespace": namespace, "name": name, "deleted": True}


def sim_routes(fleet: SimFleet, churn: Churn | None = None) -> list[web.RouteDef]:
    """The control API's routes, with their handlers bound to `fleet` (and `churn`)."""

    async def list_clusters(request: web.Request) -> web.Response:
        return web.json_response({"clusters": fleet.describe()})

    async def get_cluster(request: web.Request) -> web.Response:
        return web.json_response(fleet.cluster(request.match_info["cluster"]).describe())

    async def outage(request: web.Request) -> web.Response:
        cluster = fleet.cluster(request.match_info["cluster"])
        body = await _json_body(request, required=False)
        reasons = _unknown_keys(body, {"mode"})
        mode = body.get("mode", "refuse")
        if mode not in ("refuse", "hang"):
            reasons.append(f"mode: {mode!r} is not one of refuse, hang")
        if reasons:
            raise SimError(reasons)
        await fleet.outage(cluster.name, mode)
        return web.json_response({"cluster": cluster.name, "mode": cluster.gate.mode})

    async def recover(request: web.Request) -> web.Response:
        cluster = fleet.cluster(request.match_info["cluster"])
        await fleet.recover(cluster.name)
        return web.json_response({"cluster": cluster.name, "mode": cluster.gate.mode})

    async def put_service(request: web.Request) -> web.Response:
        cluster = fleet.cluster(request.match_info["cluster"])
        ns, name = request.match_info["namespace"], request.match_info["name"]
        spec = parse_service(ns, name, await _json_body(request))
        cluster.put_service(spec)
        return web.json_response(_service_state(cluster, ns, name))

    async def delete_service(request: web.Request) -> web.Response:
        cluster = fleet.cluster(request.match_info["cluster"])
        ns, name = request.match_info["namespace"], request.match_info["name"]
        cluster.delete_service(ns, name)
        return web.json_response(_service_state(cluster, ns, name))

    async def service_ready(request: web.Request) -> web.Response:
        cluster = fleet.cluster(request.match_info["cluster"])
        ns, name = request.match_info["namespace"], request.match_info["name"]
        body = await _json_body(request)
        reasons = _unknown_keys(body, {"ready", "total"})
        ready = body.get("ready")
        if not _is_int(ready):
            reasons.append(f"ready: {ready!r} is not a whole number")
        total = _optional_int(body, "total", reasons)
        if reasons or not _is_int(ready):
            raise SimError(reasons)
        cluster.set_ready(ns, name, ready, total)
        return web.json_response(_service_state(cluster, ns, name))

    async def node_ready(request: web.Request) -> web.Response:
        cluster = fleet.cluster(request.match_info["cluster"])
        node = request.match_info["node"]
        body = await _json_body(request)
        reasons = _unknown_keys(body, {"ready"})
        if not isinstance(body.get("ready"), bool):
            reasons.append(f"ready: {body.get('ready')!r} is not true or false")
        if reasons:
            raise SimError(reasons)
        cluster.set_node_ready(node, body["ready"])
        return web.json_response({"cluster": cluster.name, "node": node, "ready": body["ready"]})

    async def prometheus(request: web.Request) -> web.Response:
        cluster = fleet.cluster(request.match_info["cluster"])
        body = await _json_body(request)
        apply = _parse_prometheus(body)
        apply(cluster)
        return web.json_response({"cluster": cluster.name, "pins": cluster.series.pins()})

    base = f"{PREFIX}/clusters"
    svc = f"{base}/{{cluster}}/services/{{namespace}}/{{name}}"
    routes = [
        web.get(base, _guarded(list_clusters)),
        web.get(f"{base}/{{cluster}}", _guarded(get_cluster)),
        web.post(f"{base}/{{cluster}}/outage", _guarded(outage)),
        web.post(f"{base}/{{cluster}}/recover", _guarded(recover)),
        web.put(svc, _guarded(put_service)),
        web.delete(svc, _guarded(delete_service)),
        web.post(f"{svc}/ready", _guarded(service_ready)),
        web.post(f"{base}/{{cluster}}/nodes/{{node}}/ready", _guarded(node_ready)),
        web.post(f"{base}/{{cluster}}/prometheus", _guarded(prometheus)),
    ]
    if churn is not None:
        routes.append(web.get(f"{PREFIX}/churn", _churn_handler(churn)))
    return routes


def _churn_handler(churn: Churn) -> Handler:
    async def describe(request: web.Request) -> web.Response:
        return web.json_response(churn.describe())

    return describe


def _parse_prometheus(body: dict[str, Any]) -> Callable[[SimCluster], None]:
    """Validate a prometheus control body fully; return the change to apply."""
    reasons = _unknown_keys(body, {"expr", "value", "unpin", "series"})
    changes: list[Callable[[SimCluster], None]] = []
    if "expr" in body:
        expr = body["expr"]
        unpin = body.get("unpin", False)
        if not isinstance(expr, str) or not expr.strip():
            reasons.append("expr: must be a non-empty string")
        elif not isinstance(unpin, bool):
            reasons.append("unpin: must be true or false")
        elif unpin:
            changes.append(_unpin(expr))
        elif "value" not in body:
            reasons.append("value: required with expr (a number, or null for no data)")
        elif body["value"] is not None and not _is_number(body["value"]):
            reasons.append(f"value: {body['value']!r} is not a number or null")
        else:
            value = None if body["value"] is None else float(body["value"])
            changes.append(_pin(expr, value))
    elif "value" in body or "unpin" in body:
        reasons.append("expr: required with value or unpin")
    if "series" in body:
        reasons += _parse_series(body["series"], changes)
    if "expr" not in body and "series" not in body:
        reasons.append("expected expr (with value or unpin) or series")
    if reasons:
        raise SimError(reasons)

    def apply(cluster: SimCluster) -> None:
        for change in changes:
            change(cluster)

    return apply


def _pin(expr: str, value: float | None) -> Callable[[SimCluster], None]:
    return lambda cluster: cluster.series.pin(expr, value)


def _unpin(expr: str) -> Callable[[SimCluster], None]:
    def unpin(cluster: SimCluster) -> None:
        cluster.series.unpin(expr)

    return unpin


def _set_series(
    name: str, labels: dict[str, str], value: float | None
) -> Callable[[SimCluster], None]:
    return lambda cluster: cluster.series.set(name, labels, value)


def _parse_series(items: Any, changes: list[Callable[[SimCluster], None]]) -> list[str]:
    if not isinstance(items, list) or not items:
        return ["series: must be a non-empty list of {name, labels, value}"]
    reasons: list[str] = []
    for i, item in enumerate(items):
        where = f"series[{i}]"
        if not isinstance(item, dict):
            reasons.append(f"{where}: must be an object")
            continue
        reasons += [f"{where}.{r}" for r in _unknown_keys(item, {"name", "labels", "value"})]
        name, labels, value = item.get("name"), item.get("labels", {}), item.get("value")
        if not isinstance(name, str):
            reasons.append(f"{where}.name: must be a string")
            continue
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            reasons.append(f"{where}.labels: must be an object of strings")
            continue
        if "value" not in item or (value is not None and not _is_number(value)):
            reasons.append(f"{where}.value: must be a number, or null to remove the series")
            continue
        problems = label_problems(name, labels)
        reasons += [f"{where}: {p}" for p in problems]
        if not problems:
            val = None if value is None else float(value)
            changes.append(_set_series(name, dict(labels), val))
    return reasons


def add_sim_routes(app: web.Application, fleet: SimFleet, churn: Churn | None = None) -> None:
    """Mount the control API of `fleet` (and `churn`) under `/api/v1/sim/` of `app`."""
    app.router.add_routes(sim_routes(fleet, churn))
