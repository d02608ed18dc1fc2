"""The incremental ZoneBuilder gives exactly what a fresh build gives, change after change."""

from __future__ import annotations

import random
from dataclasses import replace
from types import MappingProxyType

from mcobs.answer import ZoneBuilder, ZonePolicy, build_zone
from mcobs.model import (
    AlertMark,
    CatalogSnapshot,
    ClusterReport,
    Drain,
    Health,
    HealthState,
    Scope,
    ServiceKey,
)
from mcobs.zone import Nameserver

from .factories import HEALTHY, report, service

ZONE = "global.example.com."
POLICY = ZonePolicy(
    origin=ZONE, nameservers=(Nameserver("ns1." + ZONE, ("127.0.0.1",)),), stale_after=30.0
)
KEYS = [ServiceKey("shop", name) for name in ("web", "api", "cart", "pay")]
STRATEGIES = ("weighted", "failover", "all", "geo")
DEGRADED_HEALTH = Health(0.5, HealthState.DEGRADED, ("signal low",))
DOWN_HEALTH = Health(0.0, HealthState.DOWN, ("API unreachable",))


def cluster(n: int, rng: random.Random, now: float) -> ClusterReport:
    name = f"c{n:02d}"
    services = tuple(
        service(
            name,
            (f"10.{n}.{i}.1",),
            key=key,
            ready=rng.choice((0, 1, 3)),
            annotations={"mcobs.io/strategy": STRATEGIES[i]},
        )
        for i, key in enumerate(KEYS)
        if rng.random() < 0.9
    )
    return report(name, services, observed_at=now, region=f"r{n % 3}", weight=rng.choice((0, 1, 2)))


def mutate(snap: CatalogSnapshot, rng: random.Random, now: float) -> CatalogSnapshot:
    reports = dict(snap.reports)
    drains, alerts = dict(snap.drains), dict(snap.alerts)
    n = rng.randrange(16)
    name = f"c{n:02d}"
    what = rng.randrange(8)
    if what == 0 or name not in reports:
        reports[name] = cluster(n, rng, now)
    elif what == 1:
        del reports[name]
    elif what == 2:  # a heartbeat: only the time moves
        reports[name] = replace(reports[name], observed_at=now)
    elif what == 3:
        health = rng.choice((HEALTHY, DEGRADED_HEALTH, DOWN_HEALTH))
        reports[name] = replace(reports[name], health=health, observed_at=now)
    elif what == 4 and reports[name].services:
        services = list(reports[name].services)
        i = rng.randrange(len(services))
        services[i] = replace(services[i], ready_endpoints=rng.choice((0, 2)))
        reports[name] = replace(reports[name], services=tuple(services))
    elif what == 5:
        scope = Scope(name, rng.choice((None, *KEYS)))
        if str(scope) in drains:
            del drains[str(scope)]
        else:
            drains[str(scope)] = Drain(scope, "test", now, expires_at=now + rng.choice((5, 500)))
    elif what == 6:
        fingerprint = f"alert-{n}"
        if fingerprint in alerts:
            del alerts[fingerprint]
        else:
            alerts[fingerprint] = AlertMark(
                fingerprint, Scope(name), "Broken", "critical", rng.random() < 0.5, now
            )
    return CatalogSnapshot(
        MappingProxyType(reports),
        snap.version + 1,
        drains=MappingProxyType(drains),
        alerts=MappingProxyType(alerts),
    )


def test_an_incremental_build_equals_a_fresh_one_after_every_change() -> None:
    rng = random.Random(6)
    now = 1000.0
    snap = CatalogSnapshot(
        MappingProxyType({f"c{n:02d}": cluster(n, rng, now) for n in range(12)}), 1
    )
    builder = ZoneBuilder(POLICY)
    for step in range(400):
        now += rng.choice((0.0, 1.0, 7.0))  # reports turn stale, drains expire
        snap = mutate(snap, rng, now)
        if rng.random() < 0.2:  # a build abandoned part way (its task was cancelled)
            steps = builder.build_steps(snap, now)
            for _ in range(rng.randrange(3)):
                next(steps, None)
            steps.close()
        incremental = builder.build(snap, now)
        fresh = build_zone(snap, POLICY, now)
        assert incremental.view == fresh.view, f"step {step}"
        assert incremental.services == fresh.services, f"step {step}"


def test_a_heartbeat_rebuilds_nothing() -> None:
    rng = random.Random(1)
    snap = CatalogSnapshot(
        MappingProxyType({f"c{n:02d}": cluster(n, rng, 1000.0) for n in range(6)}), 1
    )
    builder = ZoneBuilder(POLICY)
    first = builder.build(snap, 1000.0)
    beaten = replace(
        snap,
        reports=MappingProxyType(
            {c: replace(r, observed_at=1010.0) for c, r in snap.reports.items()}
        ),
    )
    second = builder.build(beaten, 1020.0)
    assert second.view.names == first.view.names
    assert all(second.services[k] is first.services[k] for k in first.services)
