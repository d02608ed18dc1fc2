"""Answer selection (pure): a catalog snapshot becomes DNS records and the reasons.

For every exported service, each cluster is either in the answer or not, with a
reason a person can read. Clusters in the answer are ordered by weight x
health score. When no cluster can serve, every cluster with an address is
answered (last resort) and the plan says so.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mcobs.annotations import parse_options
from mcobs.health import effective_health
from mcobs.model import CatalogSnapshot, ClusterReport, ClusterService, Health, ServiceKey
from mcobs.zone import NameRecords, Nameserver, Soa, SrvRecord, ZoneView

SRV_WEIGHT_SCALE = 100
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


@dataclass(frozen=True, slots=True)
class ClusterChoice:
    """Whether one cluster is in one service's answer, and why."""

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
    choices: tuple[ClusterChoice, ...]
    """Clusters in the answer first (by rank), then the others."""
    last_resort: bool
    problems: tuple[str, ...] = ()

    @property
    def answering(self) -> tuple[ClusterChoice, ...]:
        return tuple(c for c in self.choices if c.in_answer)


@dataclass(frozen=True, slots=True)
class ZonePlan:
    view: ZoneView
    services: Mapping[ServiceKey, ServicePlan] = field(default_factory=lambda: MappingProxyType({}))


def _exclusion(service: ClusterService, report: ClusterReport, health: Health) -> str | None:
    """Why a cluster cannot serve a service, or None when it can."""
    if not health.state.serves:
        why = "; ".join(health.reasons) or "no health observed"
        return f"cluster is {health.state.value}: {why}"
    if report.weight <= 0:
        return "cluster weight is 0"
    if not service.addresses:
        return "no load balancer IP address"
    if service.ready_endpoints <= 0:
        return f"no ready endpoints (0 of {service.total_endpoints})"
    return None


def _choose(
    key: ServiceKey,
    members: list[tuple[ClusterReport, ClusterService]],
    health: Mapping[str, Health],
) -> tuple[tuple[ClusterChoice, ...], bool]:
    choices: list[ClusterChoice] = []
    for report, service in members:
        cluster_health = health[report.cluster]
        excluded = _exclusion(service, report, cluster_health)
        rank = report.weight * cluster_health.score
        reason = excluded or (
            f"{cluster_health.state.value}, {service.ready_endpoints} of "
            f"{service.total_endpoints} endpoints ready, rank {rank:.3g}"
        )
        choices.append(
            ClusterChoice(
                cluster=report.cluster,
                region=report.region,
                in_answer=excluded is None,
                reason=reason,
                health=cluster_health,
                weight=report.weight,
                rank=rank if excluded is None else 0.0,
                service=service,
            )
        )
    last_resort = not any(c.in_answer for c in choices)
    if last_resort:
        choices = [
            _as_last_resort(c) if c.service.addresses and c.weight > 0 else c for c in choices
        ]
    choices.sort(key=lambda c: (not c.in_answer, -c.rank, c.cluster))
    return tuple(choices), last_resort


def _as_last_resort(choice: ClusterChoice) -> ClusterChoice:
    return ClusterChoice(
        cluster=choice.cluster,
        region=choice.region,
        in_answer=True,
        reason=f"last resort (no cluster can serve); otherwise excluded: {choice.reason}",
        health=choice.health,
        weight=choice.weight,
        rank=0.0,
        service=choice.service,
    )


def _service_ttl(services: Iterable[ClusterService], default: int) -> tuple[int, tuple[str, ...]]:
    ttls: list[int] = []
    problems: list[str] = []
    for service in services:
        options, found = parse_options(service.annotations)
        if options.ttl is not None:
            ttls.append(options.ttl)
        problems += [f"{service.cluster}: {p}" for p in found]
        problems += [f"{service.cluster}: {p}" for p in service.problems]
    return (min(ttls) if ttls else default), tuple(problems)


def plan_services(
    snapshot: CatalogSnapshot, policy: ZonePolicy, now: float
) -> dict[ServiceKey, ServicePlan]:
    """Every exported service's answer plan at time `now`."""
    health = {
        name: effective_health(report, now, policy.stale_after)
        for name, report in snapshot.reports.items()
    }
    members: dict[ServiceKey, list[tuple[ClusterReport, ClusterService]]] = defaultdict(list)
    for report in snapshot.reports.values():
        for service in report.services:
            members[service.key].append((report, service))
    plans: dict[ServiceKey, ServicePlan] = {}
    for key in sorted(members):
        choices, last_resort = _choose(key, members[key], health)
        ttl, problems = _service_ttl((s for _, s in members[key]), policy.default_ttl)
        plans[key] = ServicePlan(
            key=key,
            name=f"{key.name}.{key.namespace}.{policy.origin}",
            ttl=ttl,
            choices=choices,
            last_resort=last_resort,
            problems=problems,
        )
    return plans


def _split(addresses: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    v4: list[str] = []
    v6: list[str] = []
    for address in addresses:
        family = v4 if ipaddress.ip_address(address).version == 4 else v6
        if address not in family:
            family.append(address)
    return tuple(v4), tuple(v6)


def _records(ttl: int, addresses: Iterable[str], srv: Iterable[SrvRecord] = ()) -> NameRecords:
    a, aaaa = _split(addresses)
    return NameRecords(ttl=ttl, a=a, aaaa=aaaa, srv=tuple(srv))


def _service_names(plan: ServicePlan) -> dict[str, NameRecords]:
    names: dict[str, NameRecords] = {}
    answering = plan.answering
    names[plan.name] = _records(plan.ttl, (a for c in answering for a in c.service.addresses))
    for choice in plan.choices:
        if choice.service.addresses:
            pinned = f"{choice.cluster}.{plan.name}"
            names[pinned] = _records(plan.ttl, choice.service.addresses)
    srv: dict[str, list[SrvRecord]] = defaultdict(list)
    for choice in answering:
        weight = max(1, round(choice.rank * SRV_WEIGHT_SCALE))
        for port in choice.service.ports:
            if not port.name:
                continue
            owner = f"_{port.name}._{port.protocol.lower()}.{plan.name}"
            target = f"{choice.cluster}.{plan.name}"
            srv[owner].append(SrvRecord(0, weight, port.port, target))
    for owner, records in srv.items():
        names[owner] = NameRecords(ttl=plan.ttl, srv=tuple(records))
    return names


def _ancestors(names: Iterable[str], origin: str) -> frozenset[str]:
    found: set[str] = set()
    for name in names:
        labels = name[: -len(origin)].rstrip(".").split(".")
        for i in range(1, len(labels)):
            found.add(".".join(labels[i:]) + "." + origin)
    return frozenset(found)


def build_zone(
    snapshot: CatalogSnapshot, policy: ZonePolicy, now: float, serial: int = 1
) -> ZonePlan:
    """The DNS view of a snapshot and the plan behind every service's answer."""
    plans = plan_services(snapshot, policy, now)
    names: dict[str, NameRecords] = {}
    for ns in policy.nameservers:
        if ns.addresses and ns.name.endswith("." + policy.origin):
            names[ns.name] = _records(GLUE_TTL, ns.addresses)
    for plan in plans.values():
        names.update(_service_names(plan))
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
        ancestors=_ancestors(names, policy.origin) - names.keys(),
    )
    return ZonePlan(view=view, services=MappingProxyType(plans))
