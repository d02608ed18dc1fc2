"""The zone the DNS benchmark serves, as a ZoneView and as an RFC 1035 zone file (for NSD).

`bench_view(services)` builds the same content every time: per service an A/AAAA name,
an SRV name with two cluster targets, and the targets' A records. `zone_file(view)`
writes any ZoneView (varied names: their first variant) so NSD serves identical data.
`query_mix(view)` lists the questions both servers are asked.
"""

from __future__ import annotations

import random
from types import MappingProxyType

from mcobs.zone import NameRecords, Nameserver, Soa, SrvRecord, ZoneView

ZONE = "global.example.com."
NS1 = "ns1." + ZONE
CLUSTERS = ("eu-west", "us-east")


def service_name(index: int) -> str:
    return f"svc{index}.default.{ZONE}"


def bench_view(services: int = 200, serial: int = 1, changed: int | None = None) -> ZoneView:
    """`services` services; `changed`: that service's addresses differ (a catalog change)."""
    names: dict[str, NameRecords] = {NS1: NameRecords(ttl=300, a=("127.0.0.1",))}
    ancestors = {"default." + ZONE}
    for i in range(services):
        web = service_name(i)
        octet = 99 if i == changed else 1
        names[web] = NameRecords(
            ttl=30,
            a=(f"10.{i // 250}.{i % 250}.{octet}", f"10.{i // 250}.{i % 250}.2"),
            aaaa=(f"fd00::{i:x}:1",),
        )
        targets = tuple(f"{cluster}.{web}" for cluster in CLUSTERS)
        names["_http._tcp." + web] = NameRecords(
            ttl=30,
            srv=tuple(
                SrvRecord(priority=10, weight=50, port=8080, target=target) for target in targets
            ),
        )
        for n, target in enumerate(targets):
            names[target] = NameRecords(ttl=30, a=(f"10.{100 + n}.{i // 250}.{i % 250 + 1}",))
        ancestors.add("_tcp." + web)
    return ZoneView(
        origin=ZONE,
        soa=Soa(mname=NS1, rname="hostmaster." + ZONE, serial=serial, minimum=30, ttl=300),
        nameservers=(Nameserver(NS1, ("127.0.0.1",)),),
        names=MappingProxyType(names),
        ancestors=frozenset(ancestors),
    )


def zone_file(view: ZoneView) -> str:
    soa = view.soa
    lines = [
        f"$ORIGIN {view.origin}",
        f"@ {soa.ttl} IN SOA {soa.mname} {soa.rname} "
        f"{soa.serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}",
    ]
    lines += [f"@ {soa.ttl} IN NS {ns.name}" for ns in view.nameservers]
    for ns in view.nameservers:
        if view.in_zone(ns.name) and ns.name not in view.names:
            lines += [
                f"{ns.name} {soa.ttl} IN {'AAAA' if ':' in a else 'A'} {a}" for a in ns.addresses
            ]
    for name, records in sorted(view.names.items()):
        ttl = records.ttl
        if records.cname is not None:
            lines.append(f"{name} {ttl} IN CNAME {records.cname}")
            continue
        lines += [f"{name} {ttl} IN A {a}" for a in records.a]
        lines += [f"{name} {ttl} IN AAAA {a}" for a in records.aaaa]
        lines += [
            f"{name} {ttl} IN SRV {s.priority} {s.weight} {s.port} {s.target}" for s in records.srv
        ]
    return "\n".join(lines) + "\n"


def query_mix(services: int, count: int = 4000, seed: int = 1) -> list[tuple[str, str]]:
    """(name, type): 40% A, 20% AAAA, 20% SRV, 20% names that do not exist."""
    rng = random.Random(seed)
    mix: list[tuple[str, str]] = []
    for n in range(count):
        web = service_name(rng.randrange(services))
        kind = n % 5
        if kind in (0, 1):
            mix.append((web, "A"))
        elif kind == 2:
            mix.append((web, "AAAA"))
        elif kind == 3:
            mix.append(("_http._tcp." + web, "SRV"))
        else:
            mix.append((f"nx{rng.randrange(10**6)}.default.{ZONE}", "A"))
    return mix
