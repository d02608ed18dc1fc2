"""Answer selection (pure): a catalog snapshot becomes DNS records and the reasons.

For every exported service, each cluster is either eligible to answer or not,
with a reason a person can read. The service's strategy (`mcobs.strategies`)
turns the eligible clusters into lineups, and each lineup into records. When no
cluster is eligible, the last-resort policy decides: answer every cluster
(`serve-all`), or NXDOMAIN, or SERVFAIL; the plan says so.
"""

from __future__ import annotations

import bisect
import functools
import random
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, NamedTuple, TypeVar

from mcobs.annotations import ServiceOptions, options_of
from mcobs.health import effective_health, with_overrides
from mcobs.model import (
    AlertMark,
    CatalogSnapshot,
    ClusterReport,
    ClusterService,
    Drain,
    Health,
    HealthState,
    Scope,
    ServiceKey,
    ServicePort,
)
from mcobs.strategies import STRATEGIES, All, Candidate, Lineup, Picks, StrategyContext
from mcobs.zone import NameRecords, Nameserver, Soa, SrvRecord, VariedRecords, ZoneView

SRV_WEIGHT_SCALE = 100
_Scoped = TypeVar("_Scoped", Drain, AlertMark)
GLUE_TTL = 300


@dataclass(frozen=True, slots=True)
class ZonePolicy:
    origin: str
    """Absolute, lower case, trailing dot."""
    nameservers: tuple[Nameserver, ...]
    default_ttl: int = 5
    negative_ttl: int = 30
    stale_after: float = 30.0
    hostmaster: str | None = None
    strategy: str = "weighted"
    max_answers: int | None = None
    min_healthy_percent: float = 0.0
    last_resort: str = "serve-all"
    lineups: int = 100
    """Weighted choices are spread over this many precomputed answers."""
    weighted_depth: int = 8
    """Most clusters in one weighted or geo answer unless max-answers says otherwise."""
    regions: tuple[str, ...] = ()
    """Client regions that geo answers are planned for."""
    distance: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    seed: int = 0
    """Seeds the lineups' draws, so one catalog always gives one view."""


@dataclass(frozen=True, slots=True)
class ClusterChoice:
    """Whether one cluster is in one service's answers, and why."""

    cluster: str
    region: str
    in_answer: bool
    reason: str
    health: Health
    weight: float
    rank: float
    """weight x health score; higher answers first."""
    service: ClusterService


@dataclass(frozen=True, slots=True)
class ServicePlan:
    key: ServiceKey
    name: str
    """The global name, e.g. `web.default.global.example.com.`."""
    ttl: int
    strategy: str
    choices: tuple[ClusterChoice, ...]
    """Clusters in the answer first (by rank), then the others."""
    last_resort: bool
    last_resort_policy: str = "serve-all"
    problems: tuple[str, ...] = ()
    max_answers: int | None = None

    @property
    def answering(self) -> tuple[ClusterChoice, ...]:
        return tuple(c for c in self.choices if c.in_answer)


@dataclass(frozen=True, slots=True)
class ZonePlan:
    view: ZoneView
    services: Mapping[ServiceKey, ServicePlan] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class _Service:
    """A service's plan plus the strategy's picks, before records are built."""

    plan: ServicePlan
    picks: Picks | None
    """None when the last-resort policy answers NXDOMAIN or SERVFAIL."""


# -- options -----------------------------------------------------------------


class _Inputs(NamedTuple):
    """What one cluster contributes to one service's plan: equal inputs, equal part."""

    cluster: str
    region: str
    weight: float
    priority: int
    service: ClusterService
    health: Health
    """The cluster's health after staleness and overrides."""
    own: Health
    """The service's own health in this cluster, after overrides."""


def _merge_options(
    members: Sequence[_Inputs], alike: Mapping[str, str] | None
) -> tuple[ServiceOptions, tuple[str, ...]]:
    """One set of options for a service whose clusters may annotate it differently.

    The smallest TTL wins; for every other option the cluster first by
    (priority, name) wins, and a disagreement is reported. `alike`: the
    annotations every member shares without problems, if they do (`_shared_annotations`).
    """
    if alike is not None:
        # The usual case: one parse, and nothing to disagree on.
        options, found = options_of(alike)
        problems = (
            [f"{m.cluster}: {p}" for m in _by_priority(members) for p in found] if found else []
        )
        merged, _ = _merged([(members[0].cluster, options)])
        return merged, tuple(problems)
    problems = []
    parsed: list[tuple[str, ServiceOptions]] = []
    for member in _by_priority(members):
        options, found = options_of(member.service.annotations)
        parsed.append((member.cluster, options))
        problems += [f"{member.cluster}: {p}" for p in (*found, *member.service.problems)]
    merged, disagreements = _merged(parsed)
    return merged, (*problems, *disagreements)


def _shared_annotations(members: Sequence[_Inputs]) -> Mapping[str, str] | None:
    """The annotations of every member when they are all alike and without problems."""
    annotations = [m.service.annotations for m in members]
    if not annotations or annotations.count(annotations[0]) != len(annotations):
        return None
    return None if any(m.service.problems for m in members) else annotations[0]


def _annotated_as(member: _Inputs | None, annotations: Mapping[str, str]) -> bool:
    """Whether a member (or its absence) keeps a service's members annotated alike."""
    return member is None or (
        not member.service.problems and member.service.annotations == annotations
    )


def _by_priority(members: Sequence[_Inputs]) -> list[_Inputs]:
    return sorted(members, key=lambda m: (m.priority, m.cluster))


def _merged(parsed: Sequence[tuple[str, ServiceOptions]]) -> tuple[ServiceOptions, list[str]]:
    """Clusters' options (first by priority first) as one, and their disagreements."""
    disagreements: list[str] = []
    ttls = [o.ttl for _, o in parsed if o.ttl is not None]
    merged: dict[str, object] = {"ttl": min(ttls) if ttls else None}
    for name in ("strategy", "max_answers", "failover_order", "min_healthy_percent", "last_resort"):
        values = [(cluster, getattr(o, name)) for cluster, o in parsed if getattr(o, name)]
        if not values:
            continue
        cluster, value = values[0]
        merged[name] = value
        if any(v != value for _, v in values):
            disagreements.append(f"clusters disagree on {name}; using {value!r} from {cluster}")
    return ServiceOptions(**merged), disagreements  # type: ignore[arg-type]


# -- eligibility ---------------------------------------------------------------


def _exclusion(member: _Inputs, min_healthy_percent: float) -> str | None:
    """Why a cluster cannot serve a service, or None when it can."""
    health, service_health, service = member.health, member.own, member.service
    if not health.state.serves:
        why = "; ".join(health.reasons) or "no health observed"
        return f"cluster is {health.state.value}: {why}"
    if not service_health.state.serves:
        why = "; ".join(service_health.reasons) or "no health observed"
        return f"service is {service_health.state.value} in this cluster: {why}"
    if member.weight <= 0:
        return "cluster weight is 0"
    if not service.addresses and not service.hostnames:
        return "no load balancer address"
    if service.ready_endpoints <= 0:
        return f"no ready endpoints (0 of {service.total_endpoints})"
    if service.total_endpoints and min_healthy_percent > 0:
        percent = 100 * service.ready_endpoints / service.total_endpoints
        if percent < min_healthy_percent:
            return (
                f"{service.ready_endpoints} of {service.total_endpoints} endpoints ready "
                f"({percent:.0f}% < min-healthy-percent {min_healthy_percent:g}%)"
            )
    return None


def _with(choice: ClusterChoice, *, in_answer: bool, reason: str) -> ClusterChoice:
    return ClusterChoice(
        cluster=choice.cluster,
        region=choice.region,
        in_answer=in_answer,
        reason=reason,
        health=choice.health,
        weight=choice.weight,
        rank=choice.rank,
        service=choice.service,
    )


def _rank_order(choice: ClusterChoice) -> tuple[bool, float, str]:
    """Clusters in the answer first, then by rank (highest first), then by name."""
    return (not choice.in_answer, -choice.rank, choice.cluster)


class _Member:
    """One cluster's part in one service's plan and records.

    Kept by the ZoneBuilder while the cluster's inputs (and the service's
    min-healthy-percent) stay the same, so a change in one cluster costs each
    other member of the services it exports a lookup, not a plan.
    """

    __slots__ = (
        "_note",
        "_noted",
        "_pinned",
        "_pinned_ttl",
        "_service_name",
        "_srv",
        "_standby",
        "candidate",
        "choice",
        "inputs",
        "min_percent",
        "pinned_name",
        "seed",
        "srv_owners",
    )

    def __init__(self, inputs: _Inputs, min_percent: float, service_name: str) -> None:
        excluded = _exclusion(inputs, min_percent)
        health, service = inputs.health, inputs.service
        rank = inputs.weight * health.score * inputs.own.score if excluded is None else 0.0
        self.inputs = inputs
        self.min_percent = min_percent
        self.choice = ClusterChoice(  # before the strategy's note
            cluster=inputs.cluster,
            region=inputs.region,
            in_answer=excluded is None,
            reason=excluded
            or (
                f"{health.state.value}, {service.ready_endpoints} of "
                f"{service.total_endpoints} endpoints ready, rank {rank:.3g}"
            ),
            health=health,
            weight=inputs.weight,
            rank=rank,
            service=service,
        )
        self.candidate = Candidate(inputs.cluster, inputs.region, rank, inputs.priority)
        self.seed = repr((inputs.cluster, rank))  # as the lineups' seed spells it
        self.pinned_name = f"{inputs.cluster}.{service_name}"
        self._service_name = service_name
        self.srv_owners = _srv_owners(service.ports, service_name)
        # Caches (separate fields rather than tuples: fewer objects for the collector).
        self._note: str | None = None
        self._standby = False
        self._noted = self.choice
        self._pinned_ttl: int | None = None
        self._pinned: NameRecords | None = None
        self._srv: dict[str, tuple[SrvRecord, ...]] | None = None

    def fits(self, inputs: _Inputs, min_percent: float) -> bool:
        return (self.inputs is inputs or self.inputs == inputs) and self.min_percent == min_percent

    def noted(self, picks: Picks) -> ClusterChoice:
        """The choice with the strategy's note on this cluster, out of the answer if a standby."""
        choice = self.choice
        if not choice.in_answer:
            return choice
        note = picks.notes.get(choice.cluster)
        standby = choice.cluster in picks.standby
        if not note and not standby:
            return choice
        if self._noted is choice or self._note != note or self._standby != standby:
            reason = f"{choice.reason}; {note}" if note else choice.reason
            self._note, self._standby = note, standby
            self._noted = _with(choice, in_answer=not standby, reason=reason)
        return self._noted

    def pinned(self, ttl: int) -> NameRecords | None:
        """The records of this cluster's own name under the service."""
        if self._pinned_ttl != ttl:
            self._pinned = _pinned_records(self.inputs.service, ttl)
            self._pinned_ttl = ttl
        return self._pinned

    def srv(self, owner: str) -> tuple[SrvRecord, ...]:
        """This cluster's SRV records under `owner` (`_port._protocol.<service name>`)."""
        if self._srv is None:
            self._srv = self._srv_by_owner()
        return self._srv.get(owner, ())

    def _srv_by_owner(self) -> dict[str, tuple[SrvRecord, ...]]:
        service = self.inputs.service
        target = (
            self.pinned_name
            if service.addresses
            else (service.hostnames[0] + "." if service.hostnames else None)
        )
        if not target:
            return {}
        weight = max(1, round(self.choice.rank * SRV_WEIGHT_SCALE))
        records: dict[str, list[SrvRecord]] = defaultdict(list)
        for port in service.ports:
            owner = _srv_owner(port, self._service_name)
            records[owner].append(SrvRecord(0, weight, port.port, target))
        return {owner: tuple(found) for owner, found in records.items()}


HEALTHY_SERVICE = Health(1.0, HealthState.HEALTHY)


def _plan_service(
    key: ServiceKey,
    ranked: Sequence[_Member],
    options: ServiceOptions,
    problems: tuple[str, ...],
    policy: ZonePolicy,
) -> _Service:
    """`ranked`: the service's members by `_rank_order` of their choices."""
    strategy = options.strategy or policy.strategy
    eligible = ranked[: bisect.bisect_left(ranked, True, key=_excluded)]
    last_resort_policy = options.last_resort or policy.last_resort
    picks: Picks | None
    if eligible:
        ctx = StrategyContext(
            rng=random.Random(f"{policy.seed}/{key}/[{', '.join(m.seed for m in eligible)}]"),
            lineups=policy.lineups,
            depth=options.max_answers or policy.max_answers or policy.weighted_depth,
            failover_order=options.failover_order,
            regions=policy.regions,
            distance=policy.distance,
        )
        picks = STRATEGIES[strategy].pick([m.candidate for m in eligible], ctx)
        choices = [m.noted(picks) for m in ranked]
        if picks.standby:  # standbys leave the answer, so they sort after it
            choices.sort(key=_rank_order)
    elif last_resort_policy == "serve-all":
        choices = [_last_resort(m.choice) for m in ranked]
        picks = All().pick(
            [Candidate(c.cluster, c.region, 1.0) for c in choices if c.in_answer],
            StrategyContext(rng=random.Random(0)),
        )
    else:
        choices = [m.choice for m in ranked]
        picks = None
    plan = ServicePlan(
        key=key,
        name=_service_name(key, policy),
        ttl=options.ttl if options.ttl is not None else policy.default_ttl,
        strategy=strategy,
        choices=tuple(choices),
        last_resort=not eligible,
        last_resort_policy=last_resort_policy,
        problems=problems,
        max_answers=options.max_answers or policy.max_answers,
    )
    return _Service(plan, picks)


def _by_order(member: _Member) -> tuple[bool, float, str]:
    return _rank_order(member.choice)


def _excluded(member: _Member) -> bool:
    return not member.choice.in_answer


def _service_name(key: ServiceKey, policy: ZonePolicy) -> str:
    return f"{key.name}.{key.namespace}.{policy.origin}"


def _last_resort(choice: ClusterChoice) -> ClusterChoice:
    """Into the answer when no cluster can serve, if it has an address to give."""
    if (choice.service.addresses or choice.service.hostnames) and choice.weight > 0:
        reason = f"last resort (no cluster can serve); {choice.reason}"
        return _with(choice, in_answer=True, reason=reason)
    return choice


def plan_services(
    snapshot: CatalogSnapshot, policy: ZonePolicy, now: float
) -> dict[ServiceKey, ServicePlan]:
    """Every exported service's answer plan at time `now`."""
    return dict(build_zone(snapshot, policy, now).services)


def _by_scope(items: Iterable[_Scoped]) -> dict[Scope, list[_Scoped]]:
    index: dict[Scope, list[_Scoped]] = defaultdict(list)
    for item in items:
        index[item.scope].append(item)
    return index


def cluster_health(
    snapshot: CatalogSnapshot, cluster: str, now: float, stale_after: float
) -> Health:
    """A cluster's health as answers use it: reported, judged stale, then overridden."""
    scope = Scope(cluster)
    return with_overrides(
        effective_health(snapshot.reports[cluster], now, stale_after),
        [d for d in snapshot.drains.values() if d.scope == scope],
        [a for a in snapshot.alerts.values() if a.scope == scope],
        now,
    )


@dataclass(frozen=True, slots=True)
class _Built:
    """One service's plan and records, with the members they were built from."""

    members: Mapping[str, _Member]
    """By cluster."""
    ranked: Sequence[_Member]
    """By `_rank_order` of their choices."""
    options: ServiceOptions
    min_percent: float
    alike: Mapping[str, str] | None
    """The annotations every member shares without problems, if they do."""
    service: _Service
    fixed: Mapping[str, NameRecords]
    varied: Mapping[str, VariedRecords]
    servfail: frozenset[str]
    ancestors: frozenset[str]


@dataclass(frozen=True, slots=True)
class _ClusterPart:
    """One cluster's contribution to every service it exports, as last built."""

    report: ClusterReport
    health: Health
    """The cluster's health after staleness and overrides."""
    members: Mapping[ServiceKey, _Inputs]
    """Per service: the inputs this cluster contributes to its plan."""
    overridden: bool
    """Built with drains or alerts applied (possibly to one service only): not
    reusable once they are gone."""


def _service_options(
    by_cluster: Mapping[str, _Inputs], previous: _Built | None, changed: set[str]
) -> tuple[ServiceOptions, tuple[str, ...], Mapping[str, str] | None]:
    """A service's options, their problems, and the annotations its members share (if
    they do): the last build's while the changed clusters keep the members alike."""
    if (
        previous is not None
        and previous.alike is not None
        and not previous.service.plan.problems
        and all(_annotated_as(by_cluster.get(name), previous.alike) for name in changed)
    ):
        return previous.options, (), previous.alike
    inputs = list(by_cluster.values())
    alike = _shared_annotations(inputs)
    return (*_merge_options(inputs, alike), alike)


FEW_CHANGES: Final = 8
"""Up to this many members join the ranking one by one; more are sorted in at once
(ten thousand members with thousands changed: one by one was quadratic)."""


def _reranked(ranked: Sequence[_Member], gone: set[int], added: list[_Member]) -> list[_Member]:
    """`ranked` without the members whose ids are `gone`, with `added` in order (after
    the members that rank equal, as `bisect.insort` places them)."""
    result = [m for m in ranked if id(m) not in gone] if gone else list(ranked)
    if len(added) <= FEW_CHANGES:
        for member in added:
            bisect.insort(result, member, key=_by_order)
    else:
        result.extend(added)
        result.sort(key=_by_order)  # stable: the added ones follow equal ones
    return result


def _same_inputs(member: _Member | None, inputs: _Inputs | None) -> bool:
    if member is None or inputs is None:
        return member is None and inputs is None
    return member.inputs == inputs


def _same_but_time(a: ClusterReport, b: ClusterReport) -> bool:
    """Equal reports up to `observed_at` (cheap for a heartbeat: the services are shared)."""
    return a is b or replace(a, observed_at=b.observed_at) == b


class ZoneBuilder:
    """Builds zone plans, rebuilding only what changed.

    With a thousand clusters a catalog change touches one cluster: only that
    cluster's part is worked out again, only the services whose inputs it
    changed are planned again, and the other services keep their records
    (and their objects, which keeps the DNS answer cache warm for them). A
    service planned again reuses the part of every member whose inputs did not
    change (`_Member`).
    """

    def __init__(self, policy: ZonePolicy) -> None:
        self.policy = policy
        self._built: dict[ServiceKey, _Built] = {}
        self._parts: dict[str, _ClusterPart] = {}
        self._members: dict[ServiceKey, dict[str, _Inputs]] = {}
        self._unfinished: dict[ServiceKey, set[str]] = {}
        """Services whose inputs changed and that are not planned again yet, with the
        clusters whose inputs changed."""

    def build(self, snapshot: CatalogSnapshot, now: float, serial: int = 1) -> ZonePlan:
        steps = self.build_steps(snapshot, now, serial)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                plan: ZonePlan = done.value
                return plan

    def build_steps(
        self, snapshot: CatalogSnapshot, now: float, serial: int = 1
    ) -> Generator[None, None, ZonePlan]:
        """`build`, pausing after each service it plans again, so a caller on an event
        loop can let other work run between them. Abandoning it part way is safe:
        the services it had not finished are planned again by the next build."""
        drains = _by_scope(snapshot.drains.values())
        alerts = _by_scope(snapshot.alerts.values())
        overridden = {scope.cluster for scope in (*drains, *alerts)}
        dirty = self._unfinished
        parts: dict[str, _ClusterPart] = {}
        for name, report in snapshot.reports.items():
            health = effective_health(report, now, self.policy.stale_after)
            previous = self._parts.get(name)
            if (
                name not in overridden
                and previous is not None
                and not previous.overridden
                and previous.health == health
                and _same_but_time(previous.report, report)
            ):
                parts[name] = previous
                continue
            part = self._part(report, health, drains, alerts, now, overridden)
            parts[name] = part
            self._track(name, previous, part, dirty)
        for name in self._parts.keys() - parts.keys():
            self._track(name, self._parts[name], None, dirty)
        self._parts = parts
        for key in sorted(dirty):
            if key in self._members:
                self._built[key] = self._build_service(key, self._built.get(key), dirty[key])
            else:
                self._built.pop(key, None)
            del dirty[key]
            yield
        self._built = {key: self._built[key] for key in sorted(self._built)}
        return self._assemble(self._built, serial)

    def _part(
        self,
        report: ClusterReport,
        health: Health,
        drains: Mapping[Scope, list[Drain]],
        alerts: Mapping[Scope, list[AlertMark]],
        now: float,
        overridden: set[str],
    ) -> _ClusterPart:
        name = report.cluster
        if name in overridden:
            scope = Scope(name)
            health = with_overrides(health, drains.get(scope, ()), alerts.get(scope, ()), now)
        members: dict[ServiceKey, _Inputs] = {}
        for service in report.services:
            own = service.health or HEALTHY_SERVICE
            if name in overridden:
                scope = Scope(name, service.key)
                own = with_overrides(own, drains.get(scope, ()), alerts.get(scope, ()), now)
            members[service.key] = _Inputs(
                name, report.region, report.weight, report.priority, service, health, own
            )
        return _ClusterPart(report, health, MappingProxyType(members), name in overridden)

    def _track(
        self,
        name: str,
        old: _ClusterPart | None,
        new: _ClusterPart | None,
        dirty: dict[ServiceKey, set[str]],
    ) -> None:
        """Move one cluster's membership from `old` to `new`; note the services it changed."""
        old_members = old.members if old is not None else {}
        new_members = new.members if new is not None else {}
        for key in old_members.keys() - new_members.keys():
            dirty.setdefault(key, set()).add(name)
            members = self._members[key]
            del members[name]
            if not members:
                del self._members[key]
        for key, inputs in new_members.items():
            if old_members.get(key) == inputs:
                continue
            dirty.setdefault(key, set()).add(name)
            self._members.setdefault(key, {})[name] = inputs

    def _build_service(self, key: ServiceKey, previous: _Built | None, changed: set[str]) -> _Built:
        """Plan a service again; `changed`: the clusters whose inputs changed since
        `previous` was built."""
        by_cluster = self._members[key]
        if previous is not None and all(
            _same_inputs(previous.members.get(name), by_cluster.get(name)) for name in changed
        ):
            return previous
        options, problems, alike = _service_options(by_cluster, previous, changed)
        min_percent = (
            options.min_healthy_percent
            if options.min_healthy_percent is not None
            else self.policy.min_healthy_percent
        )
        if previous is not None and previous.min_percent == min_percent:
            members, ranked = self._update_members(key, previous, changed, min_percent)
        else:
            service_name = _service_name(key, self.policy)
            members = {
                name: _Member(inputs, min_percent, service_name)
                for name, inputs in by_cluster.items()
            }
            ranked = sorted(members.values(), key=_by_order)
        planned = _plan_service(key, ranked, options, problems, self.policy)
        fixed, varied, servfail = _service_names(planned, members)
        return _Built(
            MappingProxyType(members),
            tuple(ranked),
            options,
            min_percent,
            alike,
            planned,
            MappingProxyType(fixed),
            MappingProxyType(varied),
            frozenset(servfail),
            _ancestors([*fixed, *servfail], self.policy.origin),
        )

    def _update_members(
        self, key: ServiceKey, previous: _Built, changed: set[str], min_percent: float
    ) -> tuple[dict[str, _Member], list[_Member]]:
        """The last build's members and ranking, with the changed clusters' parts
        worked out again (a thousand members, a few changed)."""
        by_cluster = self._members[key]
        service_name = _service_name(key, self.policy)
        members = dict(previous.members)
        gone: set[int] = set()
        added: list[_Member] = []
        for name in changed:
            old = members.pop(name, None)
            inputs = by_cluster.get(name)
            if old is not None and inputs is not None and old.fits(inputs, min_percent):
                members[name] = old
                continue
            if old is not None:
                gone.add(id(old))
            if inputs is not None:
                members[name] = new = _Member(inputs, min_percent, service_name)
                added.append(new)
        return members, _reranked(previous.ranked, gone, added)

    def _assemble(self, built: Mapping[ServiceKey, _Built], serial: int) -> ZonePlan:
        policy = self.policy
        names: dict[str, NameRecords] = {}
        varied: dict[str, VariedRecords] = {}
        servfail: set[str] = set()
        ancestors: set[str] = set()
        for ns in policy.nameservers:
            if ns.addresses and ns.name.endswith("." + policy.origin):
                a, aaaa = _split(ns.addresses, None)
                names[ns.name] = NameRecords(ttl=GLUE_TTL, a=a, aaaa=aaaa)
                ancestors |= _ancestors([ns.name], policy.origin)
        for one in built.values():
            names.update(one.fixed)
            varied.update(one.varied)
            servfail |= one.servfail
            ancestors |= one.ancestors
        primary = policy.nameservers[0].name if policy.nameservers else "ns1." + policy.origin
        soa = Soa(
            mname=primary,
            rname=policy.hostmaster or "hostmaster." + policy.origin,
            serial=serial,
            minimum=policy.negative_ttl,
        )
        view = ZoneView(
            origin=policy.origin,
            soa=soa,
            nameservers=policy.nameservers,
            names=MappingProxyType(names),
            ancestors=frozenset(ancestors - names.keys()),
            varied=MappingProxyType(varied),
            servfail=frozenset(servfail),
        )
        return ZonePlan(
            view=view, services=MappingProxyType({k: b.service.plan for k, b in built.items()})
        )


# -- records ---------------------------------------------------------------------


def _split(addresses: Iterable[str], cap: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Canonical addresses (validated at the edge) by family, without repeats, capped."""
    v4: dict[str, None] = {}
    v6: dict[str, None] = {}
    for address in addresses:
        (v6 if ":" in address else v4)[address] = None
    return tuple(v4)[:cap], tuple(v6)[:cap]


def _pinned_records(service: ClusterService, ttl: int) -> NameRecords | None:
    """The records of a cluster's own name under a service."""
    if service.addresses:
        a, aaaa = _split(service.addresses, None)
        return NameRecords(ttl=ttl, a=a, aaaa=aaaa)
    if service.hostnames:
        return NameRecords(ttl=ttl, cname=service.hostnames[0] + ".")
    return None


def _srv_owner(port: ServicePort, service_name: str) -> str:
    return f"_{port.name}._{port.protocol.lower()}.{service_name}"


@functools.lru_cache(maxsize=4096)
def _srv_owners(ports: tuple[ServicePort, ...], service_name: str) -> tuple[str, ...]:
    """The SRV names of a service's named ports (one tuple shared by clusters alike)."""
    return tuple(_srv_owner(port, service_name) for port in ports if port.name)


class _Records:
    """Builds NameRecords for lineups, reusing equal objects (the DNS cache keys on them)."""

    def __init__(self, plan: ServicePlan, members: Mapping[str, _Member]) -> None:
        self.plan = plan
        self.members = members
        self._interned: dict[NameRecords, NameRecords] = {}

    def intern(self, records: NameRecords) -> NameRecords:
        return self._interned.setdefault(records, records)

    def answer(
        self, picks: Picks, build: Callable[[Lineup], NameRecords]
    ) -> NameRecords | VariedRecords:
        """The records of every lineup; one NameRecords when they are all the same.

        `build` interns what it returns, so equal records are the same object."""
        variants = tuple(build(lineup) for lineup in picks.lineups)
        by_region = {r: tuple(build(lineup) for lineup in ls) for r, ls in picks.by_region.items()}
        first = variants[0] if variants else None
        if (
            first is not None
            and all(v is first for v in variants)
            and all(v and all(r is first for r in v) for v in by_region.values())
        ):
            return first
        return VariedRecords(
            variants=variants, by_region=MappingProxyType(by_region), geo=picks.geo
        )

    def addresses(self, lineup: Lineup) -> NameRecords:
        ttl, cap = self.plan.ttl, self.plan.max_answers
        services = [self.members[c].inputs.service for c in lineup]
        if services and not services[0].addresses and services[0].hostnames:
            return self.intern(NameRecords(ttl=ttl, cname=services[0].hostnames[0] + "."))
        a, aaaa = _split((a for s in services for a in s.addresses), cap)
        return self.intern(NameRecords(ttl=ttl, a=a, aaaa=aaaa))

    def srv_owners(self) -> list[str]:
        return sorted({owner for m in self.members.values() for owner in m.srv_owners})

    def srv(self, owner: str, lineup: Lineup) -> NameRecords:
        records = [record for cluster in lineup for record in self.members[cluster].srv(owner)]
        return self.intern(
            NameRecords(ttl=self.plan.ttl, srv=tuple(records[: self.plan.max_answers]))
        )


def _service_names(
    service: _Service, members: Mapping[str, _Member]
) -> tuple[dict[str, NameRecords], dict[str, VariedRecords], set[str]]:
    """(fixed names, varied names, SERVFAIL names) of one service."""
    plan, picks = service.plan, service.picks
    records = _Records(plan, members)
    fixed: dict[str, NameRecords] = {}
    varied: dict[str, VariedRecords] = {}
    owners = [plan.name, *records.srv_owners()]
    if picks is None and plan.last_resort_policy == "nxdomain":
        # A name with names below it exists (NODATA), so NXDOMAIN for the service
        # withdraws its cluster-pinned names too.
        return fixed, varied, set()
    for choice in plan.choices:
        member = members[choice.cluster]
        pinned = member.pinned(plan.ttl)
        if pinned is not None:
            fixed[member.pinned_name] = pinned
    if picks is None:
        return fixed, varied, set(owners)
    for owner in owners:
        if owner == plan.name:
            answer = records.answer(picks, records.addresses)
        else:
            answer = records.answer(picks, functools.partial(records.srv, owner))
        if isinstance(answer, VariedRecords):
            varied[owner] = answer
            fixed[owner] = answer.variants[0]
        else:
            fixed[owner] = answer
    return fixed, varied, set()


def _ancestors(names: Iterable[str], origin: str) -> frozenset[str]:
    """The names above `names` inside the zone (not the origin itself)."""
    # Names share parents (every cluster-pinned name of a service has the
    # service's name as its parent), so each parent is walked up once.
    parents = {name.partition(".")[2] for name in names}
    found: set[str] = set()
    for parent in parents:
        if parent.endswith("." + origin):
            labels = parent[: -len(origin)].rstrip(".").split(".")
            for i in range(len(labels)):
                found.add(".".join(labels[i:]) + "." + origin)
    return frozenset(found)


def build_zone(
    snapshot: CatalogSnapshot, policy: ZonePolicy, now: float, serial: int = 1
) -> ZonePlan:
    """The DNS view of a snapshot and the plan behind every service's answer."""
    return ZoneBuilder(policy).build(snapshot, now, serial)
