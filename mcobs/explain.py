"""What DNS would answer to one client, and why (pure; backs `/api/v1/resolve`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from mcobs.answer import ServicePlan, ZonePlan
from mcobs.zone import NameRecords

QTYPES = ("A", "AAAA", "SRV", "CNAME", "SOA", "NS")


@dataclass(frozen=True, slots=True)
class Resolution:
    name: str
    qtype: str
    rcode: str
    region: str | None
    answers: tuple[str, ...]
    """Records of the answer a query would most likely get (text form)."""
    chances: tuple[tuple[str, float], ...]
    """For answers picked per query: each possible first record and its share."""
    service: ServicePlan | None


def _records(records: NameRecords, qtype: str) -> tuple[str, ...]:
    if records.cname:
        return (f"CNAME {records.cname}",)
    if qtype == "A":
        return records.a
    if qtype == "AAAA":
        return records.aaaa
    if qtype == "SRV":
        return tuple(f"{r.priority} {r.weight} {r.port} {r.target}" for r in records.srv)
    return ()


def resolve(plan: ZonePlan, name: str, qtype: str, region: str | None) -> Resolution:
    """The answer to `name`/`qtype` for a client located in `region` (None: unknown)."""
    view = plan.view
    name = name.lower().rstrip(".") + "."
    service = next((p for p in plan.services.values() if name.endswith(p.name)), None)
    if not view.in_zone(name):
        return Resolution(name, qtype, "REFUSED", region, (), (), None)
    if name in view.servfail:
        return Resolution(name, qtype, "SERVFAIL", region, (), (), service)
    if name == view.origin and qtype in ("SOA", "NS"):
        answers = (
            (f"{view.soa.mname} {view.soa.rname} {view.soa.serial}",)
            if qtype == "SOA"
            else tuple(ns.name for ns in view.nameservers)
        )
        return Resolution(name, qtype, "NOERROR", region, answers, (), None)
    records = view.lookup(name)
    if records is None:
        return Resolution(name, qtype, "NXDOMAIN", region, (), (), service)
    varied = view.varied.get(name)
    chances: tuple[tuple[str, float], ...] = ()
    if varied is not None:
        choices = varied.by_region.get(region, varied.variants) if region else varied.variants
        firsts = Counter(_records(v, qtype)[:1] for v in choices)
        chances = tuple(
            (first[0], round(count / len(choices), 4))
            for first, count in firsts.most_common()
            if first
        )
        records = choices[0]
    return Resolution(name, qtype, "NOERROR", region, _records(records, qtype), chances, service)


def resolution_json(resolution: Resolution, client: str | None) -> dict[str, Any]:
    service = resolution.service
    return {
        "name": resolution.name,
        "type": resolution.qtype,
        "client": client,
        "client_region": resolution.region,
        "rcode": resolution.rcode,
        "answer": list(resolution.answers),
        "first_answer_shares": [{"record": r, "share": s} for r, s in resolution.chances],
        "service": None
        if service is None
        else {
            "namespace": service.key.namespace,
            "name": service.key.name,
            "strategy": service.strategy,
            "last_resort": service.last_resort,
            "clusters": [
                {"cluster": c.cluster, "in_answer": c.in_answer, "reason": c.reason}
                for c in service.choices
            ],
        },
    }
