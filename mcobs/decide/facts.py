"""Facts: what the last decision saw, the baseline the next one is compared with (pure).

The leader keeps them next to the event log (`mcobs:{decide}:facts`), written
in the same fenced script as the events they explain, so a new leader carries
on from exactly where the old one stopped: no repeated events, no lost ones,
no flood after a takeover or a restart.

One entry per thing, so a decision rewrites only what changed:

    cluster:<name>          {"state": "down", "since": 1714564800.123}
    service:<ns>/<name>     {"answer": [...], "failed_over": true, "last_resort": false,
                             "failover_since": 1714564800.1, "last_resort_since": null}
    drain:<scope>           {"reason": "...", "since": 1714564800.1}

An entry that does not decode is dropped (that thing is then seen as new).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from mcobs.model import ServiceKey

CLUSTER: Final = "cluster:"
SERVICE: Final = "service:"
DRAIN: Final = "drain:"


@dataclass(frozen=True, slots=True)
class ClusterFact:
    state: str
    """A `HealthState` value (drains left out: they have facts of their own)."""
    since: float
    """Unix seconds when the cluster entered `state`."""


@dataclass(frozen=True, slots=True)
class ServiceFact:
    answer: tuple[str, ...]
    """Clusters in the normal answer, sorted by name; kept as it was during last resort."""
    failed_over: bool
    """Some cluster that would answer when healthy is out because of its health."""
    last_resort: bool
    failover_since: float | None = None
    last_resort_since: float | None = None


@dataclass(frozen=True, slots=True)
class DrainFact:
    reason: str
    since: float


def _frozen(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Facts:
    clusters: Mapping[str, ClusterFact] = field(default_factory=lambda: MappingProxyType({}))
    services: Mapping[ServiceKey, ServiceFact] = field(default_factory=lambda: MappingProxyType({}))
    drains: Mapping[str, DrainFact] = field(default_factory=lambda: MappingProxyType({}))
    """By `str(scope)`: `cluster` or `cluster/namespace/name`."""


EMPTY_FACTS: Final = Facts()


def _time(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _encode(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _cluster_json(fact: ClusterFact) -> str:
    return _encode({"state": fact.state, "since": _time(fact.since)})


def _service_json(fact: ServiceFact) -> str:
    return _encode(
        {
            "answer": list(fact.answer),
            "failed_over": fact.failed_over,
            "last_resort": fact.last_resort,
            "failover_since": _time(fact.failover_since),
            "last_resort_since": _time(fact.last_resort_since),
        }
    )


def _drain_json(fact: DrainFact) -> str:
    return _encode({"reason": fact.reason, "since": _time(fact.since)})


def _kinds(facts: Facts) -> tuple[tuple[str, Mapping[Any, Any], Callable[[Any], str]], ...]:
    """Each kind of fact: its field prefix, the facts by name, and their encoder."""
    return (
        (CLUSTER, facts.clusters, _cluster_json),
        (SERVICE, facts.services, _service_json),
        (DRAIN, facts.drains, _drain_json),
    )


def to_entries(facts: Facts) -> dict[str, str]:
    """Facts as hash fields -> compact JSON."""
    return {
        prefix + str(name): encode(fact)
        for prefix, by_name, encode in _kinds(facts)
        for name, fact in by_name.items()
    }


def changed_entries(before: Facts, after: Facts) -> dict[str, str | None]:
    """What to write to go from `before` to `after`: field -> JSON, or None to delete.

    Only facts that differ are encoded: a service's answer can name thousands of
    clusters, and encoding every service on every plan took a third of a replica's
    CPU with ten thousand clusters."""
    changes: dict[str, str | None] = {}
    for (prefix, old, encode), (_, new, _) in zip(_kinds(before), _kinds(after), strict=True):
        for name, fact in new.items():
            was = old.get(name)
            if was is not None and (was is fact or was == fact):
                continue
            encoded = encode(fact)
            if was is None or encode(was) != encoded:
                changes[prefix + str(name)] = encoded
        changes.update({prefix + str(name): None for name in old.keys() - new.keys()})
    return changes


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _optional_number(raw: Mapping[str, Any], key: str) -> tuple[bool, float | None]:
    value = raw.get(key)
    return (True, None) if value is None else (_number(value) is not None, _number(value))


def _decode_one(name: str, text: str | bytes) -> tuple[str, object] | None:
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    if name.startswith(CLUSTER):
        since = _number(raw.get("since"))
        state = raw.get("state")
        if since is None or not isinstance(state, str):
            return None
        return name, ClusterFact(state, since)
    if name.startswith(DRAIN):
        since = _number(raw.get("since"))
        reason = raw.get("reason")
        if since is None or not isinstance(reason, str):
            return None
        return name, DrainFact(reason, since)
    if name.startswith(SERVICE):
        answer = raw.get("answer")
        ok_failover, failover_since = _optional_number(raw, "failover_since")
        ok_resort, resort_since = _optional_number(raw, "last_resort_since")
        if not (
            isinstance(answer, list)
            and all(isinstance(a, str) for a in answer)
            and isinstance(raw.get("failed_over"), bool)
            and isinstance(raw.get("last_resort"), bool)
            and ok_failover
            and ok_resort
            and "/" in name[len(SERVICE) :]
        ):
            return None
        return name, ServiceFact(
            tuple(answer),
            raw["failed_over"],
            raw["last_resort"],
            failover_since,
            resort_since,
        )
    return None


def from_entries(entries: Mapping[str, str | bytes]) -> tuple[Facts, list[str]]:
    """Facts from hash fields, and the fields that did not decode (dropped)."""
    clusters: dict[str, ClusterFact] = {}
    services: dict[ServiceKey, ServiceFact] = {}
    drains: dict[str, DrainFact] = {}
    bad: list[str] = []
    for name, text in sorted(entries.items()):
        decoded = _decode_one(name, text)
        if decoded is None:
            bad.append(name)
            continue
        _, fact = decoded
        if isinstance(fact, ClusterFact):
            clusters[name[len(CLUSTER) :]] = fact
        elif isinstance(fact, DrainFact):
            drains[name[len(DRAIN) :]] = fact
        elif isinstance(fact, ServiceFact):
            namespace, service = name[len(SERVICE) :].split("/", 1)
            services[ServiceKey(namespace, service)] = fact
    return Facts(_frozen(clusters), _frozen(services), _frozen(drains)), bad
