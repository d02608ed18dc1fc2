"""Decisions (pure): the previous facts and a new (snapshot, plan) -> events and new facts.

Every replica computes the same `ZonePlan`; the leader turns each new plan into
the decisions it makes, as `mcobs.notify.event` events with their inputs and
reasons, and keeps `Facts` (what it decided last) as the baseline for the next
plan. Events, in this order:

* `override.drain` - a drain (of a cluster, or of one service in one cluster)
  became active, or ended (removed or expired).
* `cluster.state_changed` - a cluster's health state changed. The state is the
  one answers use minus drains (those have their own event): healthy,
  degraded, down (also: stale, or a critical Alertmanager alert), unknown. A
  cluster that left the catalog goes to `unknown`.
* `service.last_resort` - no cluster could serve a service, so its last-resort
  policy answers (active), or that ended (not active).
* `service.failover` - a service's answer moved off clusters that would answer
  when healthy (active: some cluster is out because of its health or its
  endpoints), changed while failed over, or moved back (not active). A change
  of the answer that no failure caused (a cluster starts or stops exporting
  the service, a weight is set to 0, a drain) is not a failover. For the
  `failover` strategy only a failed cluster ahead of the answering one in the
  failover order counts; a failed standby does not. While a service is in last
  resort its failover state is kept as it was and compared again afterwards.

Things seen for the first time (a new cluster, a new service, or every thing
after the facts were lost) start silently when they look normal and with one
event when they do not (a cluster that starts down: `unknown -> down`; a
service that starts failed over or in last resort), so a first start, a
restart or a takeover never floods consumers.

`since` in an event's data is when the condition it ends or changes began
(RFC 3339), or null for a condition that starts with this event.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from mcobs.annotations import parse_options
from mcobs.answer import ClusterChoice, ServicePlan, ZonePlan, cluster_health
from mcobs.decide.facts import ClusterFact, DrainFact, Facts, ServiceFact
from mcobs.model import CatalogSnapshot, Drain, HealthState, Scope, ServiceKey
from mcobs.notify.event import Event, format_time, new_event, utc

MAX_ITEMS: Final = 50
"""Longest list (reasons, clusters) and largest `inputs` map in one event."""
MAX_TEXT: Final = 300
"""Longest reason, in characters."""


@dataclass(frozen=True, slots=True)
class Decision:
    events: tuple[Event, ...]
    facts: Facts


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def _capped(items: Iterable[str]) -> list[str]:
    values = [_text(v) for v in items]
    if len(values) <= MAX_ITEMS:
        return values
    return [*values[: MAX_ITEMS - 1], f"... and {len(values) - MAX_ITEMS + 1} more"]


def _when(seconds: float | None) -> str | None:
    return None if seconds is None else format_time(utc(seconds))


class _Events:
    def __init__(self, now: float, rng: random.Random) -> None:
        self.now = now
        self.rng = rng
        self.items: list[Event] = []

    def add(self, type_: str, data: Mapping[str, Any]) -> None:
        self.items.append(new_event(type_, data, clock=lambda: self.now, rng=self.rng))


# -- drains ----------------------------------------------------------------------


def _drain_data(scope: str, drain: Drain | None, *, active: bool, reason: str) -> dict[str, Any]:
    cluster, _, rest = scope.partition("/")
    data: dict[str, Any] = {"cluster": cluster, "active": active, "reason": _text(reason)}
    data["scope"] = scope
    if rest:
        namespace, _, name = rest.partition("/")
        data["namespace"], data["service"] = namespace, name
    if drain is not None:
        data["by"] = drain.by
        data["expires_at"] = _when(drain.expires_at)
    return data


def _drains(before: Facts, snapshot: CatalogSnapshot, out: _Events) -> dict[str, DrainFact]:
    now = out.now
    active = {str(d.scope): d for d in snapshot.drains.values() if d.active(now)}
    stored = {str(d.scope): d for d in snapshot.drains.values()}
    facts: dict[str, DrainFact] = {}
    for scope in sorted(before.drains.keys() | active.keys()):
        old, new = before.drains.get(scope), active.get(scope)
        if new is not None:
            facts[scope] = DrainFact(new.reason, old.since if old else now)
            if old is None:
                out.add(
                    "override.drain",
                    {**_drain_data(scope, new, active=True, reason=new.reason), "since": None},
                )
        elif old is not None:
            ended = "expired" if scope in stored else "removed"
            data = _drain_data(scope, stored.get(scope), active=False, reason=old.reason)
            out.add("override.drain", {**data, "ended": ended, "since": _when(old.since)})
    return facts


# -- clusters --------------------------------------------------------------------


def _cluster_data(
    snapshot: CatalogSnapshot, name: str, reasons: Sequence[str], score: float
) -> dict[str, Any]:
    report = snapshot.reports[name]
    probe = report.probe
    return {
        "reasons": _capped(reasons),
        "region": report.region,
        "score": score,
        "observed_at": _when(report.observed_at),
        "probe": {
            "reachable": probe.reachable,
            "readyz_ok": probe.readyz_ok,
            "latency_s": probe.latency_s,
            "nodes_ready": probe.nodes_ready,
            "nodes_total": probe.nodes_total,
            "error": probe.error,
        },
        "catalog_version": snapshot.version,
    }


def _clusters(
    before: Facts, snapshot: CatalogSnapshot, stale_after: float, out: _Events
) -> dict[str, ClusterFact]:
    now = out.now
    undrained = replace(snapshot, drains=MappingProxyType({}))
    facts: dict[str, ClusterFact] = {}
    for name in sorted(before.clusters.keys() | snapshot.reports.keys()):
        old = before.clusters.get(name)
        if name not in snapshot.reports:
            assert old is not None
            data = {
                "cluster": name,
                "from": old.state,
                "to": HealthState.UNKNOWN.value,
                "reasons": ["no longer in the catalog"],
                "since": _when(old.since),
            }
            out.add("cluster.state_changed", data)
            continue
        health = cluster_health(undrained, name, now, stale_after)
        state = health.state.value
        if old is not None and old.state == state:
            facts[name] = old
            continue
        facts[name] = ClusterFact(state, now)
        if old is None and health.state in (HealthState.HEALTHY, HealthState.UNKNOWN):
            continue
        data = {
            "cluster": name,
            "from": old.state if old else HealthState.UNKNOWN.value,
            "to": state,
            "since": _when(old.since) if old else None,
            **_cluster_data(snapshot, name, health.reasons, health.score),
        }
        out.add("cluster.state_changed", data)
    return facts


# -- services --------------------------------------------------------------------


def _drained(snapshot: CatalogSnapshot, now: float) -> frozenset[Scope]:
    return frozenset(d.scope for d in snapshot.drains.values() if d.active(now))


def _failover_position(
    plan: ServicePlan, snapshot: CatalogSnapshot
) -> Callable[[ClusterChoice], tuple[int, int, str]]:
    """The order the `failover` strategy ranks clusters in (see `mcobs.strategies`)."""

    def priority(cluster: str) -> int:
        report = snapshot.reports.get(cluster)
        return report.priority if report is not None else 0

    order: tuple[str, ...] = ()
    for choice in sorted(plan.choices, key=lambda c: (priority(c.cluster), c.cluster)):
        found = parse_options(choice.service.annotations)[0].failover_order
        if found:
            order = found
            break

    def position(choice: ClusterChoice) -> tuple[int, int, str]:
        listed = order.index(choice.cluster) if choice.cluster in order else len(order)
        return (listed, priority(choice.cluster), choice.cluster)

    return position


def failed_clusters(
    plan: ServicePlan, snapshot: CatalogSnapshot, now: float
) -> tuple[ClusterChoice, ...]:
    """Clusters that would answer `plan`'s service when healthy but are out because of
    their health or their endpoints (not weight 0, no address, a drain or standby)."""
    drained = _drained(snapshot, now)
    failed = [
        c
        for c in plan.choices
        if not c.in_answer
        and c.rank <= 0
        and c.weight > 0
        and (c.service.addresses or c.service.hostnames)
        and Scope(c.cluster) not in drained
        and Scope(c.cluster, plan.key) not in drained
    ]
    answering = plan.answering
    if plan.strategy == "failover" and answering and failed:
        position = _failover_position(plan, snapshot)
        first = min(position(c) for c in answering)
        failed = [c for c in failed if position(c) < first]
    return tuple(failed)


def _inputs(plan: ServicePlan, names: Iterable[str]) -> dict[str, Any]:
    wanted = set(names)
    inputs: dict[str, Any] = {}
    for choice in plan.choices:
        if choice.cluster not in wanted or len(inputs) >= MAX_ITEMS:
            continue
        service = choice.service
        inputs[choice.cluster] = {
            "in_answer": choice.in_answer,
            "state": choice.health.state.value,
            "score": choice.health.score,
            "weight": choice.weight,
            "rank": round(choice.rank, 6),
            "ready_endpoints": service.ready_endpoints,
            "total_endpoints": service.total_endpoints,
        }
    return inputs


def _reasons(choices: Iterable[ClusterChoice]) -> list[str]:
    return _capped(f"{c.cluster}: {c.reason}" for c in choices)


def _scope(key: ServiceKey) -> dict[str, Any]:
    return {"namespace": key.namespace, "service": key.name}


def _gone(key: ServiceKey, old: ServiceFact, out: _Events) -> None:
    reasons = ["no cluster exports the service any more"]
    if old.last_resort:
        data = {"active": False, "clusters": [], "reasons": reasons}
        out.add(
            "service.last_resort",
            {**_scope(key), **data, "since": _when(old.last_resort_since)},
        )
    if old.failed_over:
        data = {"active": False, "from": list(old.answer), "to": [], "reasons": reasons}
        out.add("service.failover", {**_scope(key), **data, "since": _when(old.failover_since)})


def _service(
    key: ServiceKey,
    old: ServiceFact | None,
    plan: ServicePlan,
    snapshot: CatalogSnapshot,
    out: _Events,
) -> ServiceFact:
    now = out.now
    was_resort = old.last_resort if old else False
    resort_since: float | None = None
    if plan.last_resort:
        resort_since = old.last_resort_since if old and was_resort else now
    common = {"strategy": plan.strategy, "catalog_version": snapshot.version}
    if plan.last_resort != was_resort:
        answering = plan.answering
        shown = plan.choices if plan.last_resort else answering
        data = {
            **_scope(key),
            "active": plan.last_resort,
            "clusters": _capped(c.cluster for c in answering),
            "reasons": _reasons(shown),
            "since": None if plan.last_resort else _when(old.last_resort_since if old else None),
            "policy": plan.last_resort_policy,
            "inputs": _inputs(plan, (c.cluster for c in plan.choices)),
            **common,
        }
        out.add("service.last_resort", data)
    if plan.last_resort:
        # Failover state is frozen while the last-resort policy answers.
        kept = old or ServiceFact((), False, False)
        return replace(kept, last_resort=True, last_resort_since=resort_since)

    answer = tuple(sorted(c.cluster for c in plan.answering))
    failed = failed_clusters(plan, snapshot, now)
    old_answer = old.answer if old else ()
    was_failed = old.failed_over if old else False
    is_failed = bool(failed)
    since = (old.failover_since if old and was_failed else now) if is_failed else None
    if (was_failed or is_failed) and (old_answer != answer or was_failed != is_failed):
        excluded = [c for c in plan.choices if not c.in_answer]
        joined = [c for c in plan.answering if c.cluster not in old_answer]
        data = {
            **_scope(key),
            "active": is_failed,
            "from": _capped(old_answer),
            "to": _capped(c.cluster for c in plan.answering),
            "reasons": _reasons(excluded or joined),
            "since": _when(old.failover_since) if old and was_failed else None,
            "failed": _capped(c.cluster for c in failed),
            "inputs": _inputs(plan, {*old_answer, *answer, *(c.cluster for c in failed)}),
            **common,
        }
        out.add("service.failover", data)
    return ServiceFact(answer, is_failed, False, since, None)


def _services(
    before: Facts, snapshot: CatalogSnapshot, plan: ZonePlan, out: _Events
) -> dict[ServiceKey, ServiceFact]:
    facts: dict[ServiceKey, ServiceFact] = {}
    for key in sorted(before.services.keys() | plan.services.keys()):
        old = before.services.get(key)
        service = plan.services.get(key)
        if service is None:
            assert old is not None
            _gone(key, old, out)
            continue
        facts[key] = _service(key, old, service, snapshot, out)
    return facts


# -- the decision ----------------------------------------------------------------


def decide(
    before: Facts,
    snapshot: CatalogSnapshot,
    plan: ZonePlan,
    *,
    now: float,
    stale_after: float,
    rng: random.Random,
) -> Decision:
    """The events that take `before` to what (`snapshot`, `plan`) show at `now`.

    `plan` must have been built from `snapshot`; `stale_after` is the zone
    policy's. Events are stamped `now`; their ids draw from `rng`.
    """
    out = _Events(now, rng)
    drains = _drains(before, snapshot, out)
    clusters = _clusters(before, snapshot, stale_after, out)
    services = _services(before, snapshot, plan, out)
    facts = Facts(MappingProxyType(clusters), MappingProxyType(services), MappingProxyType(drains))
    return Decision(tuple(out.items), facts)
