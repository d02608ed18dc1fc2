"""The event value: what changed, when, in which scope (pure; no I/O).

An event is frozen and carries a stable `id` (`evt_` + a ULID: 48 bits of
milliseconds, 80 random bits, Crockford base32), so ids sort by time and a
consumer can de-duplicate repeated deliveries by it. Its JSON form is the
Standard Webhooks payload shape:

    {"id": "evt_01HX...", "type": "cluster.state_changed",
     "timestamp": "2024-05-01T12:00:00.123456Z", "data": {...}}

Every known type is in `EVENT_TYPES` with the keys its `data` must carry;
`decode_event` and `new_event` check them and report every problem at once.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TypeAlias

JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
"""Frozen JSON: mappings are read-only proxies and arrays are tuples."""

MAX_EVENT_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 8

_ID = re.compile(r"^evt_[0-9A-HJKMNP-TV-Z]{26}$")
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class EventError(ValueError):
    """An event or its JSON is invalid; `problems` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Field:
    """A key an event's `data` must (or may) carry, and the JSON type of its value."""

    name: str
    kind: str
    """`str`, `bool`, `str[]` (an array of strings) or `str?` (a string or null)."""
    required: bool = True


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str
    fields: tuple[Field, ...]


def _type(name: str, description: str, *fields: Field) -> tuple[str, EventType]:
    return name, EventType(name, description, fields)


_SCOPE_SERVICE = (Field("namespace", "str"), Field("service", "str"))

EVENT_TYPES: Final[Mapping[str, EventType]] = MappingProxyType(
    dict(
        [
            _type(
                "cluster.state_changed",
                "a cluster's health state changed (healthy, degraded, down, unknown)",
                Field("cluster", "str"),
                Field("from", "str"),
                Field("to", "str"),
                Field("reasons", "str[]"),
                Field("since", "str?", required=False),
            ),
            _type(
                "service.failover",
                "a service's answers moved off (active) or back onto (not active) "
                "its preferred clusters",
                *_SCOPE_SERVICE,
                Field("active", "bool"),
                Field("from", "str[]"),
                Field("to", "str[]"),
                Field("reasons", "str[]"),
                Field("since", "str?", required=False),
            ),
            _type(
                "service.last_resort",
                "no cluster can serve a service, so every cluster is answered (active), "
                "or that ended (not active)",
                *_SCOPE_SERVICE,
                Field("active", "bool"),
                Field("clusters", "str[]"),
                Field("reasons", "str[]"),
                Field("since", "str?", required=False),
            ),
            _type(
                "override.drain",
                "an operator drained a cluster out of every answer (active) or undrained it",
                Field("cluster", "str"),
                Field("active", "bool"),
                Field("reason", "str"),
                Field("since", "str?", required=False),
            ),
        ]
    )
)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. Build with `new_event`; `data` is frozen JSON."""

    id: str
    type: str
    occurred_at: datetime
    """Aware, UTC, microsecond precision (so it survives its JSON form exactly)."""
    data: Mapping[str, JsonValue]

    @property
    def timestamp(self) -> str:
        return format_time(self.occurred_at)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: `2024-05-01T12:00:00.123456Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc(seconds: float) -> datetime:
    """Unix seconds -> an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(seconds, UTC)


def new_event_id(now: float, rng: random.Random) -> str:
    """`evt_` + a ULID from `now` (Unix seconds) and 80 bits of `rng`."""
    value = (int(now * 1000) & (2**48 - 1)) << 80 | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "evt_" + "".join(reversed(chars))


def new_event(
    type_: str,
    data: Mapping[str, Any],
    *,
    clock: Callable[[], float],
    rng: random.Random,
) -> Event:
    """A validated event of a known type, stamped by `clock` and identified from `rng`."""
    now = clock()
    problems = []
    if type_ not in EVENT_TYPES:
        problems.append(f"type: unknown event type {type_!r} (known: {', '.join(EVENT_TYPES)})")
    frozen = _freeze_data(data, problems)
    if not problems:
        problems.extend(check_data(type_, frozen))
    if problems:
        raise EventError(problems)
    return Event(new_event_id(now, rng), type_, utc(now), frozen)


def check_data(type_: str, data: Mapping[str, JsonValue]) -> list[str]:
    """Problems of `data` against the registry entry of `type_` (none for unknown types)."""
    known = EVENT_TYPES.get(type_)
    if known is None:
        return []
    problems = []
    for field in known.fields:
        if field.name not in data:
            if field.required:
                problems.append(f"data.{field.name}: missing")
            continue
        if not _has_kind(data[field.name], field.kind):
            problems.append(f"data.{field.name}: must be {_KIND_NAMES[field.kind]}")
    return problems


_KIND_NAMES: Final = {
    "str": "a string",
    "bool": "true or false",
    "str[]": "an array of strings",
    "str?": "a string or null",
}


def _has_kind(value: JsonValue, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "str?":
        return value is None or isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


def _freeze_data(data: object, problems: list[str]) -> Mapping[str, JsonValue]:
    if not isinstance(data, Mapping):
        problems.append("data: must be an object")
        return MappingProxyType({})
    frozen = _freeze(data, "data", 0, problems)
    assert isinstance(frozen, Mapping)
    return frozen


def _freeze(value: object, path: str, depth: int, problems: list[str]) -> JsonValue:
    if depth > MAX_DEPTH:
        problems.append(f"{path}: nested deeper than {MAX_DEPTH} levels")
        return None
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.append(f"{path}: must be a finite number")
        return value
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{path}: keys must be strings, got {key!r}")
                continue
            out[key] = _freeze(item, f"{path}.{key}", depth + 1, problems)
        return MappingProxyType(out)
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, f"{path}[{i}]", depth + 1, problems) for i, v in enumerate(value))
    problems.append(f"{path}: {type(value).__name__} is not JSON")
    return None


def thaw(value: JsonValue) -> Any:
    """Frozen JSON -> plain dicts and lists, for `json.dumps`."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def event_json(event: Event) -> dict[str, Any]:
    """The event as plain JSON-able data (the `standard` payload)."""
    return {
        "id": event.id,
        "type": event.type,
        "timestamp": event.timestamp,
        "data": thaw(event.data),
    }


def encode_event(event: Event) -> bytes:
    """Compact, key-ordered UTF-8 JSON; identical bytes for identical events."""
    return json.dumps(
        event_json(event), separators=(",", ":"), sort_keys=True, ensure_ascii=False
    ).encode()


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp with a zone -> aware UTC datetime; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset
        return None


def event_from_json(raw: object) -> Event:
    """Validate decoded JSON into an Event; raises EventError with every problem."""
    if not isinstance(raw, Mapping):
        raise EventError(["(top level): must be an object"])
    problems: list[str] = []
    extra = sorted(set(raw) - {"id", "type", "timestamp", "data"})
    if extra:
        problems.append(f"(top level): unknown keys {', '.join(map(str, extra))}")
    id_ = raw.get("id")
    if not isinstance(id_, str) or not _ID.fullmatch(id_):
        problems.append(f"id: must look like evt_<26 base32 characters>, got {id_!r}")
    type_ = raw.get("type")
    if not isinstance(type_, str) or not _TYPE.fullmatch(type_):
        problems.append(f"type: must be dotted lower-case words, got {type_!r}")
    occurred_at = parse_time(raw.get("timestamp"))
    if occurred_at is None:
        problems.append(f"timestamp: must be RFC 3339 with a zone, got {raw.get('timestamp')!r}")
    data = _freeze_data(raw.get("data"), problems)
    if isinstance(type_, str):
        problems.extend(check_data(type_, data))
    if problems:
        raise EventError(problems)
    assert isinstance(id_, str) and isinstance(type_, str) and occurred_at is not None
    return Event(id_, type_, occurred_at, data)


def decode_event(payload: bytes | str) -> Event:
    """Parse and validate the JSON of one event; raises EventError."""
    if len(payload) > MAX_EVENT_BYTES:
        raise EventError([f"(top level): larger than {MAX_EVENT_BYTES} bytes"])
    try:
        raw = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise EventError([f"(top level): not JSON: {error}"]) from None
    return event_from_json(raw)


# -- constructors for the known types ---------------------------------------------------


def cluster_state_changed(
    cluster: str,
    from_state: str,
    to_state: str,
    reasons: Sequence[str] = (),
    *,
    clock: Callable[[], float],
    rng: random.Random,
) -> Event:
    data = {"cluster": cluster, "from": from_state, "to": to_state, "reasons": list(reasons)}
    return new_event("cluster.state_changed", data, clock=clock, rng=rng)


def service_failover(
    namespace: str,
    service: str,
    *,
    active: bool,
    from_clusters: Sequence[str],
    to_clusters: Sequence[str],
    reasons: Sequence[str] = (),
    clock: Callable[[], float],
    rng: random.Random,
) -> Event:
    data = {
        "namespace": namespace,
        "service": service,
        "active": active,
        "from": list(from_clusters),
        "to": list(to_clusters),
        "reasons": list(reasons),
    }
    return new_event("service.failover", data, clock=clock, rng=rng)


def service_last_resort(
    namespace: str,
    service: str,
    *,
    active: bool,
    clusters: Sequence[str],
    reasons: Sequence[str] = (),
    clock: Callable[[], float],
    rng: random.Random,
) -> Event:
    data = {
        "namespace": namespace,
        "service": service,
        "active": active,
        "clusters": list(clusters),
        "reasons": list(reasons),
    }
    return new_event("service.last_resort", data, clock=clock, rng=rng)


def override_drain(
    cluster: str,
    *,
    active: bool,
    reason: str = "",
    clock: Callable[[], float],
    rng: random.Random,
) -> Event:
    data = {"cluster": cluster, "active": active, "reason": reason}
    return new_event("override.drain", data, clock=clock, rng=rng)
