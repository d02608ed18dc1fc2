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
ANNOTATIONS = (
    {"mcobs.io/min-healthy-percent": "50"},
    {"mcobs.io/min-healthy-percent": "90"},
    {"mcobs.io/strategy": "failover", "mcobs.io/failover-order": "c03,c01"},
    {"mcobs.io/strategy": "failover", "mcobs.io/failover-order": "c01,c03"},
    {"mcobs.io/ttl": "60", "mcobs.io/max-answers": "2"},
    {"mcobs.io/last-resort": "nxdomain"},
)


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
    what = rng.randrange(9)
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
    elif what == 7 and reports[name].services:  # options change, for every member
        services = list(reports[name].services)
        i = rng.randrange(len(services))
        annotations = {"mcobs.io/global": "true", **rng.choice(ANNOTATIONS)}
        services[i] = replace(services[i], annotations=MappingProxyType(annotations))
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


def test_an_incremental_build_equals_a_fresh_one_after_many_changes_at_once() -> None:
    """Many members leaving and joining a service's ranking at once (a fleet's
    reports turning stale together) give the ranking a fresh build gives."""
    rng = random.Random(11)
    now = 1000.0
    snap = CatalogSnapshot(
        MappingProxyType({f"c{n:02d}": cluster(n, rng, now) for n in range(16)}), 1
    )
    builder = ZoneBuilder(POLICY)
    for step in range(150):
        now += rng.choice((0.0, 1.0, 31.0))
        for _ in range(rng.randrange(40)):
            snap = mutate(snap, rng, now)
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


def _web(snap: CatalogSnapshot, builder: ZoneBuilder, now: float = 1000.0) -> dict[str, str]:
    """Each cluster's reason for web, after checking the builder against a fresh build."""
    incremental = builder.build(snap, now)
    fresh = build_zone(snap, POLICY, now)
    assert incremental.view == fresh.view
    assert incremental.services == fresh.services
    return {c.cluster: c.reason for c in incremental.services[KEYS[0]].choices}


def _fleet(*annotations: dict[str, str], ready: int = 3) -> CatalogSnapshot:
    reports = {
        f"c{n:02d}": report(
            f"c{n:02d}",
            (service(f"c{n:02d}", (f"10.0.{n}.1",), key=KEYS[0], ready=ready, annotations=a),),
        )
        for n, a in enumerate(annotations)
    }
    return CatalogSnapshot(MappingProxyType(reports), 1)


def test_lifting_a_service_drain_brings_the_service_back() -> None:
    builder = ZoneBuilder(POLICY)
    plain = _fleet({}, {})
    scope = Scope("c00", KEYS[0])
    drained = replace(plain, drains=MappingProxyType({str(scope): Drain(scope, "test", 990.0)}))
    assert _web(drained, builder)["c00"].startswith("service is drained")
    assert _web(plain, builder)["c00"].startswith("healthy")


def test_one_cluster_changing_min_healthy_percent_judges_every_member_again() -> None:
    builder = ZoneBuilder(POLICY)
    assert _web(_fleet({}, {}, {}, ready=1), builder)["c02"].startswith("healthy")
    strict = {"mcobs.io/min-healthy-percent": "50"}
    reasons = _web(_fleet(strict, {}, {}, ready=1), builder)  # c00's options win
    assert "1 of 3 endpoints ready (33% < min-healthy-percent 50%)" in reasons["c02"]
    assert _web(_fleet({}, {}, {}, ready=1), builder)["c02"].startswith("healthy")


def test_one_cluster_changing_failover_order_notes_every_member_again() -> None:
    builder = ZoneBuilder(POLICY)
    failover = {"mcobs.io/strategy": "failover"}
    reasons = _web(_fleet(failover, failover, failover), builder)
    assert reasons["c00"].endswith("active (first healthy in failover order)")
    ordered = {**failover, "mcobs.io/failover-order": "c02,c01,c00"}
    reasons = _web(_fleet(ordered, failover, failover), builder)
    assert reasons["c02"].endswith("active (first healthy in failover order)")
    assert reasons["c00"].endswith("standby #3 in failover order")
