"""ClusterReport <-> JSON (pure): what the catalog stores for one cluster.

The encoding is a JSON object with a `schema` number and every field spelled
out. Decoding is strict: wrong types, missing or unknown fields, an unknown
`schema` and invalid values (ports, endpoint counts, IP literals, health
states) raise `CatalogDecodeError`, which lists every problem with its path
(`services[2].ports[0].port: expected an integer, got string`). A reader skips
such an entry rather than serving it.

Non-finite floats (Prometheus happily returns NaN) are written as the strings
"NaN", "+Inf" and "-Inf", so the bytes stay standard JSON.

Schema policy: add or change a field -> bump `SCHEMA`. A reader only accepts
the schema it knows, so upgrade the readers before (or with) the writers.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final, TypeAlias, TypeVar

from mcobs.model import (
    AlertMark,
    ApiProbe,
    ClusterReport,
    ClusterService,
    Drain,
    Health,
    HealthState,
    Scope,
    ServiceKey,
    ServicePort,
    Signal,
)

SCHEMA: Final = 1
"""Version of the encoding written by `report_to_dict`."""

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

_T = TypeVar("_T")

_NON_FINITE: Final = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}


class CatalogDecodeError(ValueError):
    """A stored report that cannot be read back; `reasons` names each bad field."""

    def __init__(self, reasons: Sequence[str], *, cluster: str | None = None) -> None:
        self.reasons: tuple[str, ...] = tuple(reasons)
        self.cluster = cluster
        where = f"cluster {cluster!r}: " if cluster is not None else ""
        super().__init__(where + "; ".join(self.reasons))


# --- encoding -------------------------------------------------------------------------


def _num(value: float) -> JsonValue:
    if math.isfinite(value):
        return float(value)
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _opt_num(value: float | None) -> JsonValue:
    return None if value is None else _num(value)


def _strs(values: Sequence[str]) -> JsonValue:
    return list(values)


def _str_map(values: Mapping[str, str]) -> JsonValue:
    return {k: values[k] for k in sorted(values)}


def _encode_service(service: ClusterService) -> JsonValue:
    ports: list[JsonValue] = [
        {"name": p.name, "port": p.port, "protocol": p.protocol} for p in service.ports
    ]
    return {
        "cluster": service.cluster,
        "namespace": service.key.namespace,
        "name": service.key.name,
        "addresses": _strs(service.addresses),
        "hostnames": _strs(service.hostnames),
        "ports": ports,
        "ready_endpoints": service.ready_endpoints,
        "total_endpoints": service.total_endpoints,
        "annotations": _str_map(service.annotations),
        "problems": _strs(service.problems),
        "health": None if service.health is None else _encode_health(service.health),
    }


def _encode_health(health: Health) -> JsonValue:
    return {
        "score": _num(health.score),
        "state": health.state.value,
        "reasons": _strs(health.reasons),
    }


def report_to_dict(report: ClusterReport) -> dict[str, JsonValue]:
    """The JSON-able form of a report (with `schema`)."""
    probe = report.probe
    services: list[JsonValue] = [_encode_service(s) for s in report.services]
    signals: list[JsonValue] = [
        {"name": s.name, "value": _opt_num(s.value), "error": s.error} for s in report.signals
    ]
    return {
        "schema": SCHEMA,
        "cluster": report.cluster,
        "region": report.region,
        "observed_at": _num(report.observed_at),
        "probe": {
            "reachable": probe.reachable,
            "latency_s": _opt_num(probe.latency_s),
            "readyz_ok": probe.readyz_ok,
            "nodes_ready": probe.nodes_ready,
            "nodes_total": probe.nodes_total,
            "error": probe.error,
        },
        "health": _encode_health(report.health),
        "services": services,
        "signals": signals,
        "weight": _num(report.weight),
        "priority": report.priority,
        "labels": _str_map(report.labels),
        "services_synced": report.services_synced,
    }


def report_to_bytes(report: ClusterReport) -> bytes:
    """Compact (ASCII) JSON of `report_to_dict`."""
    return json.dumps(report_to_dict(report), separators=(",", ":"), allow_nan=False).encode()


# --- decoding -------------------------------------------------------------------------


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Reader:
    """Reads typed fields out of parsed JSON, collecting every problem."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path or '(root)'}: {message}")

    def obj(self, value: object, path: str, fields: frozenset[str]) -> dict[str, object]:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {_kind(value)}")
            return {}
        for key in sorted(fields - value.keys()):
            self.fail(_at(path, key), "missing")
        for key in sorted(str(k) for k in value.keys() - fields):
            self.fail(_at(path, key), "unknown field")
        return value

    def _get(
        self,
        data: Mapping[str, object],
        key: str,
        path: str,
        convert: Callable[[object], _T | None],
        expected: str,
        default: _T,
    ) -> _T:
        if key not in data:  # already reported by obj()
            return default
        raw = data[key]
        value = convert(raw)
        if value is None:
            self.fail(_at(path, key), f"expected {expected}, got {_kind(raw)}")
            return default
        return value

    def string(self, data: Mapping[str, object], key: str, path: str) -> str:
        return self._get(data, key, path, _as_str, "a string", "")

    def name(self, data: Mapping[str, object], key: str, path: str) -> str:
        value = self.string(data, key, path)
        if key in data and isinstance(data[key], str) and not value:
            self.fail(_at(path, key), "must not be empty")
        return value

    def opt_string(self, data: Mapping[str, object], key: str, path: str) -> str | None:
        if data.get(key) is None:
            return None
        return self.string(data, key, path)

    def boolean(self, data: Mapping[str, object], key: str, path: str) -> bool:
        return self._get(data, key, path, _as_bool, "a boolean", False)

    def opt_boolean(self, data: Mapping[str, object], key: str, path: str) -> bool | None:
        if data.get(key) is None:
            return None
        return self.boolean(data, key, path)

    def integer(
        self, data: Mapping[str, object], key: str, path: str, lo: int, hi: int | None = None
    ) -> int:
        value = self._get(data, key, path, _as_int, "an integer", lo)
        if value < lo or (hi is not None and value > hi):
            bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            self.fail(_at(path, key), f"{value} out of range ({bound})")
            return lo
        return value

    def number(self, data: Mapping[str, object], key: str, path: str) -> float:
        return self._get(data, key, path, _as_float, 'a number, "NaN", "+Inf" or "-Inf"', 0.0)

    def opt_number(self, data: Mapping[str, object], key: str, path: str) -> float | None:
        if data.get(key) is None:
            return None
        return self.number(data, key, path)

    def array(self, data: Mapping[str, object], key: str, path: str) -> list[object]:
        return self._get(data, key, path, _as_list, "an array", [])

    def strings(self, data: Mapping[str, object], key: str, path: str) -> tuple[str, ...]:
        out: list[str] = []
        for i, item in enumerate(self.array(data, key, path)):
            if isinstance(item, str):
                out.append(item)
            else:
                self.fail(_at(_at(path, key), i), f"expected a string, got {_kind(item)}")
        return tuple(out)

    def str_map(self, data: Mapping[str, object], key: str, path: str) -> Mapping[str, str]:
        empty: dict[str, object] = {}
        raw = self._get(data, key, path, _as_dict, "an object", empty)
        out: dict[str, str] = {}
        for k, v in raw.items():
            if isinstance(v, str):
                out[k] = v
            else:
                self.fail(_at(_at(path, key), k), f"expected a string, got {_kind(v)}")
        return MappingProxyType(out)


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _NON_FINITE.get(value)
    return None


def _as_list(value: object) -> list[object] | None:
    return value if isinstance(value, list) else None


def _as_dict(value: object) -> dict[str, object] | None:
    return value if isinstance(value, dict) else None


_REPORT_FIELDS: Final = frozenset(
    {
        "schema",
        "cluster",
        "region",
        "observed_at",
        "probe",
        "health",
        "services",
        "signals",
        "weight",
        "priority",
        "labels",
        "services_synced",
    }
)
_PROBE_FIELDS: Final = frozenset(
    {"reachable", "latency_s", "readyz_ok", "nodes_ready", "nodes_total", "error"}
)
_HEALTH_FIELDS: Final = frozenset({"score", "state", "reasons"})
_SERVICE_FIELDS: Final = frozenset(
    {
        "cluster",
        "namespace",
        "name",
        "addresses",
        "hostnames",
        "ports",
        "ready_endpoints",
        "total_endpoints",
        "annotations",
        "problems",
        "health",
    }
)
_PORT_FIELDS: Final = frozenset({"name", "port", "protocol"})
_SIGNAL_FIELDS: Final = frozenset({"name", "value", "error"})
_STATES: Final = {s.value: s for s in HealthState}


def _probe(r: _Reader, value: object, path: str) -> ApiProbe:
    d = r.obj(value, path, _PROBE_FIELDS)
    return ApiProbe(
        reachable=r.boolean(d, "reachable", path),
        latency_s=r.opt_number(d, "latency_s", path),
        readyz_ok=r.opt_boolean(d, "readyz_ok", path),
        nodes_ready=r.integer(d, "nodes_ready", path, 0),
        nodes_total=r.integer(d, "nodes_total", path, 0),
        error=r.opt_string(d, "error", path),
    )


def _health(r: _Reader, value: object, path: str) -> Health:
    d = r.obj(value, path, _HEALTH_FIELDS)
    state_name = r.string(d, "state", path)
    state = _STATES.get(state_name, HealthState.UNKNOWN)
    if "state" in d and isinstance(d["state"], str) and state_name not in _STATES:
        r.fail(_at(path, "state"), f"unknown health state {state_name!r}")
    return Health(
        score=r.number(d, "score", path),
        state=state,
        reasons=r.strings(d, "reasons", path),
    )


def _port(r: _Reader, value: object, path: str) -> ServicePort:
    d = r.obj(value, path, _PORT_FIELDS)
    return ServicePort(
        name=r.string(d, "name", path),
        port=r.integer(d, "port", path, 0, 65535),
        protocol=r.name(d, "protocol", path),
    )


@functools.lru_cache(maxsize=65536)
def _canonical_ip(text: str) -> str | None:
    """The canonical spelling of an IP address, None if it is not one. Cached: a
    thousand clusters' reports are read again and again with the same addresses."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _addresses(r: _Reader, d: Mapping[str, object], path: str) -> tuple[str, ...]:
    addresses = r.strings(d, "addresses", path)
    for i, address in enumerate(addresses):
        canonical = _canonical_ip(address)
        if canonical is None:
            r.fail(_at(_at(path, "addresses"), i), f"{address!r} is not an IP address")
        elif canonical != address:
            r.fail(_at(_at(path, "addresses"), i), f"{address!r} is not canonical ({canonical})")
    return addresses


def _service(r: _Reader, value: object, path: str) -> ClusterService:
    d = r.obj(value, path, _SERVICE_FIELDS)
    return ClusterService(
        cluster=r.name(d, "cluster", path),
        key=ServiceKey(r.name(d, "namespace", path), r.name(d, "name", path)),
        addresses=_addresses(r, d, path),
        hostnames=r.strings(d, "hostnames", path),
        ports=tuple(
            _port(r, p, _at(_at(path, "ports"), i)) for i, p in enumerate(r.array(d, "ports", path))
        ),
        ready_endpoints=r.integer(d, "ready_endpoints", path, 0),
        total_endpoints=r.integer(d, "total_endpoints", path, 0),
        annotations=r.str_map(d, "annotations", path),
        problems=r.strings(d, "problems", path),
        health=None if d.get("health") is None else _health(r, d["health"], _at(path, "health")),
    )


def _signal(r: _Reader, value: object, path: str) -> Signal:
    d = r.obj(value, path, _SIGNAL_FIELDS)
    return Signal(
        name=r.name(d, "name", path),
        value=r.opt_number(d, "value", path),
        error=r.opt_string(d, "error", path),
    )


def report_from_dict(data: object) -> ClusterReport:
    """Strictly decode `report_to_dict` output; raises `CatalogDecodeError`."""
    if not isinstance(data, dict):
        raise CatalogDecodeError([f"(root): expected an object, got {_kind(data)}"])
    cluster = data.get("cluster") if isinstance(data.get("cluster"), str) else None
    schema = data.get("schema")
    if schema != SCHEMA or isinstance(schema, bool):
        raise CatalogDecodeError(
            [f"schema: unsupported schema {schema!r} (this mcobs reads {SCHEMA})"],
            cluster=cluster,
        )
    r = _Reader()
    d = r.obj(data, "", _REPORT_FIELDS)
    report = ClusterReport(
        cluster=r.name(d, "cluster", ""),
        region=r.string(d, "region", ""),
        observed_at=r.number(d, "observed_at", ""),
        probe=_probe(r, d.get("probe"), "probe") if "probe" in d else ApiProbe(False),
        health=_health(r, d.get("health"), "health")
        if "health" in d
        else Health(0.0, HealthState.UNKNOWN),
        services=tuple(
            _service(r, s, _at("services", i)) for i, s in enumerate(r.array(d, "services", ""))
        ),
        signals=tuple(
            _signal(r, s, _at("signals", i)) for i, s in enumerate(r.array(d, "signals", ""))
        ),
        weight=r.number(d, "weight", ""),
        priority=r.integer(d, "priority", "", -(2**63), 2**63 - 1),
        labels=r.str_map(d, "labels", ""),
        services_synced=r.boolean(d, "services_synced", ""),
    )
    if r.errors:
        raise CatalogDecodeError(r.errors, cluster=cluster)
    return report


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def report_from_bytes(raw: bytes | str) -> ClusterReport:
    """Strictly decode `report_to_bytes` output; raises `CatalogDecodeError`."""
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise CatalogDecodeError([f"(root): not valid JSON: {error}"]) from None
    return report_from_dict(data)


def check_report(report: ClusterReport) -> bytes:
    """Encode `report` and prove it reads back; raises `CatalogDecodeError` otherwise.

    Stores call this on write, so a report a reader would skip is refused at the
    writer, with the reasons.
    """
    raw = report_to_bytes(report)
    report_from_bytes(raw)
    return raw


# --- overrides: drains and alerts ---------------------------------------------------------

_SCOPE_FIELDS: Final = frozenset({"cluster", "namespace", "service"})
_DRAIN_FIELDS: Final = frozenset({"schema", "scope", "reason", "created_at", "expires_at", "by"})
_ALERT_FIELDS: Final = frozenset(
    {
        "schema",
        "fingerprint",
        "scope",
        "name",
        "severity",
        "down",
        "starts_at",
        "ends_at",
        "summary",
    }
)


def _encode_scope(scope: Scope) -> JsonValue:
    service = scope.service
    return {
        "cluster": scope.cluster,
        "namespace": service.namespace if service else None,
        "service": service.name if service else None,
    }


def _scope(r: _Reader, value: object, path: str) -> Scope:
    d = r.obj(value, path, _SCOPE_FIELDS)
    namespace = r.opt_string(d, "namespace", path)
    name = r.opt_string(d, "service", path)
    if (namespace is None) != (name is None):
        r.fail(path, "namespace and service go together")
    key = ServiceKey(namespace, name) if namespace and name else None
    return Scope(r.name(d, "cluster", path), key)


def _dump(data: dict[str, JsonValue]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def _load(raw: bytes | str, fields: frozenset[str]) -> tuple[_Reader, dict[str, object]]:
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise CatalogDecodeError([f"(root): not valid JSON: {error}"]) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise CatalogDecodeError([f"schema: unsupported or missing (this mcobs reads {SCHEMA})"])
    r = _Reader()
    return r, r.obj(data, "", fields)


def drain_to_bytes(drain: Drain) -> bytes:
    return _dump(
        {
            "schema": SCHEMA,
            "scope": _encode_scope(drain.scope),
            "reason": drain.reason,
            "created_at": _num(drain.created_at),
            "expires_at": _opt_num(drain.expires_at),
            "by": drain.by,
        }
    )


def drain_from_bytes(raw: bytes | str) -> Drain:
    r, d = _load(raw, _DRAIN_FIELDS)
    drain = Drain(
        scope=_scope(r, d.get("scope"), "scope"),
        reason=r.string(d, "reason", ""),
        created_at=r.number(d, "created_at", ""),
        expires_at=r.opt_number(d, "expires_at", ""),
        by=r.string(d, "by", ""),
    )
    if r.errors:
        raise CatalogDecodeError(r.errors)
    return drain


def alert_to_bytes(alert: AlertMark) -> bytes:
    return _dump(
        {
            "schema": SCHEMA,
            "fingerprint": alert.fingerprint,
            "scope": _encode_scope(alert.scope),
            "name": alert.name,
            "severity": alert.severity,
            "down": alert.down,
            "starts_at": _num(alert.starts_at),
            "ends_at": _opt_num(alert.ends_at),
            "summary": alert.summary,
        }
    )


def alert_from_bytes(raw: bytes | str) -> AlertMark:
    r, d = _load(raw, _ALERT_FIELDS)
    alert = AlertMark(
        fingerprint=r.name(d, "fingerprint", ""),
        scope=_scope(r, d.get("scope"), "scope"),
        name=r.string(d, "name", ""),
        severity=r.string(d, "severity", ""),
        down=r.boolean(d, "down", ""),
        starts_at=r.number(d, "starts_at", ""),
        ends_at=r.opt_number(d, "ends_at", ""),
        summary=r.string(d, "summary", ""),
    )
    if r.errors:
        raise CatalogDecodeError(r.errors)
    return alert
