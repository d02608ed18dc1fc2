"""Routing strategies as a user configures them, through build_zone."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from types import MappingProxyType

from mcobs.answer import ZonePolicy, build_zone
from mcobs.model import ClusterService, Health, HealthState, ServiceKey
from mcobs.zone import Nameserver, VariedRecords

from .factories import report, service, snapshot

ZONE = "global.example.com."
WEB = "web.default." + ZONE
POLICY = ZonePolicy(origin=ZONE, nameservers=(Nameserver("ns1." + ZONE),))
NOW = 1010.0
DOWN = Health(0.0, HealthState.DOWN, ("API unreachable",))
IPS = {"eu-west": "192.0.2.1", "us-east": "198.51.100.1", "ap-south": "203.0.113.1"}
REGIONS = {"eu-west": "europe", "us-east": "america", "ap-south": "asia"}


def fleet(annotations: dict[str, str] | None = None, **changes: dict[str, object]):  # type: ignore[no-untyped-def]
    reports = []
    for name, ip in IPS.items():
        spec: dict[str, object] = {"weight": 1.0, "health": Health(1.0, HealthState.HEALTHY)}
        spec.update(changes.get(name.replace("-", "_"), {}))
        svc = spec.pop("service", None) or service(name, (ip,), annotations=annotations)
        assert isinstance(svc, ClusterService)
        reports.append(report(name, (svc,), region=REGIONS[name], **spec))  # type: ignore[arg-type]
    return snapshot(*reports)


def first_answers(varied: VariedRecords) -> Counter[str]:
    return Counter(v.a[0] for v in varied.variants)


def test_weighted_selection_follows_weight_times_health() -> None:
    snap = fleet(
        eu_west={"weight": 3.0},
        us_east={"weight": 1.0},
        ap_south={"health": Health(0.5, HealthState.DEGRADED, ("slow",)), "weight": 2.0},
    )
    view = build_zone(snap, POLICY, NOW).view
    varied = view.varied[WEB]
    assert len(varied.variants) == 100
    # weight x health: 3 : 1 : (2 x 0.5) -> 60% : 20% : 20% of first answers
    assert first_answers(varied) == {"192.0.2.1": 60, "198.51.100.1": 20, "203.0.113.1": 20}
    assert all(len(v.a) == 3 for v in varied.variants)


def test_weighted_is_deterministic_for_one_catalog() -> None:
    assert build_zone(fleet(), POLICY, NOW).view == build_zone(fleet(), POLICY, NOW).view


def test_max_answers_caps_the_answer_and_zero_weight_never_appears() -> None:
    snap = fleet({"mcobs.io/max-answers": "1"}, us_east={"weight": 0.0})
    varied = build_zone(snap, POLICY, NOW).view.varied[WEB]
    assert all(len(v.a) == 1 for v in varied.variants)
    assert first_answers(varied) == {"192.0.2.1": 50, "203.0.113.1": 50}


def test_failover_answers_only_the_first_healthy_in_order() -> None:
    order = {"mcobs.io/strategy": "failover", "mcobs.io/failover-order": "us-east,ap-south"}
    plan = build_zone(fleet(order), POLICY, NOW)
    records = plan.view.lookup(WEB)
    assert records is not None and records.a == ("198.51.100.1",)
    assert WEB not in plan.view.varied
    reasons = {c.cluster: c.reason for c in plan.services[ServiceKey("default", "web")].choices}
    assert "active" in reasons["us-east"]
    assert "standby #2" in reasons["ap-south"] and "standby #3" in reasons["eu-west"]

    failed = build_zone(fleet(order, us_east={"health": DOWN}), POLICY, NOW).view.lookup(WEB)
    assert failed is not None and failed.a == ("203.0.113.1",)


def test_failover_without_an_order_uses_cluster_priority() -> None:
    snap = fleet({"mcobs.io/strategy": "failover"}, eu_west={}, ap_south={})
    reports = {
        name: replace(r, priority={"eu-west": 2, "us-east": 1, "ap-south": 3}[name])
        for name, r in snap.reports.items()
    }
    view = build_zone(replace(snap, reports=MappingProxyType(reports)), POLICY, NOW).view
    records = view.lookup(WEB)
    assert records is not None and records.a == ("198.51.100.1",)


def test_geo_answers_the_nearest_healthy_region() -> None:
    policy = replace(
        POLICY,
        regions=("europe", "america", "asia", "africa"),
        distance={"europe": {"america": 6, "asia": 7, "africa": 3}, "asia": {"africa": 8}},
    )
    geo = {"mcobs.io/strategy": "geo"}
    varied = build_zone(fleet(geo), policy, NOW).view.varied[WEB]
    assert varied.geo
    assert {r: {v.a[0] for v in vs} for r, vs in varied.by_region.items()} == {
        "europe": {"192.0.2.1"},
        "america": {"198.51.100.1"},
        "asia": {"203.0.113.1"},
        "africa": {"192.0.2.1"},
    }
    assert len(first_answers(varied)) == 3  # unknown clients: weighted over all

    # Europe down: Africa's nearest healthy region is now America... no: the table says
    # africa-america is unknown, so Africa goes to Asia (8); Europe's clients to America (6).
    varied = build_zone(fleet(geo, eu_west={"health": DOWN}), policy, NOW).view.varied[WEB]
    assert {v.a[0] for v in varied.by_region["europe"]} == {"198.51.100.1"}
    assert {v.a[0] for v in varied.by_region["africa"]} == {"203.0.113.1"}


def test_all_answers_every_healthy_cluster() -> None:
    records = build_zone(fleet({"mcobs.io/strategy": "all"}), POLICY, NOW).view.lookup(WEB)
    assert records is not None and set(records.a) == set(IPS.values())


def test_min_healthy_percent_takes_a_cluster_out_for_that_service() -> None:
    partial = service(
        "eu-west",
        ("192.0.2.1",),
        ready=1,
        total=3,
        annotations={"mcobs.io/min-healthy-percent": "50", "mcobs.io/strategy": "all"},
    )
    plan = build_zone(
        fleet({"mcobs.io/strategy": "all"}, eu_west={"service": partial}), POLICY, NOW
    )
    records = plan.view.lookup(WEB)
    assert records is not None and "192.0.2.1" not in records.a
    eu = next(
        c for c in plan.services[ServiceKey("default", "web")].choices if c.cluster == "eu-west"
    )
    assert "33% < min-healthy-percent 50%" in eu.reason


def test_last_resort_policies() -> None:
    all_down = {
        "eu_west": {"health": DOWN},
        "us_east": {"health": DOWN},
        "ap_south": {"health": DOWN},
    }
    serve_all = build_zone(fleet(**all_down), POLICY, NOW).view.lookup(WEB)
    assert serve_all is not None and set(serve_all.a) == set(IPS.values())

    nx = build_zone(fleet({"mcobs.io/last-resort": "nxdomain"}, **all_down), POLICY, NOW).view
    assert nx.lookup(WEB) is None and nx.lookup("_http._tcp." + WEB) is None
    assert nx.lookup("eu-west." + WEB) is None  # withdrawn too: the name must not exist

    sf = build_zone(fleet({"mcobs.io/last-resort": "servfail"}, **all_down), POLICY, NOW).view
    assert WEB in sf.servfail and "_http._tcp." + WEB in sf.servfail


def test_hostname_load_balancers_answer_with_a_cname() -> None:
    cloud = replace(service("us-east", ()), hostnames=("lb-123.elb.example.net",))
    plan = build_zone(
        fleet(
            {"mcobs.io/strategy": "failover", "mcobs.io/failover-order": "us-east"},
            us_east={"service": cloud},
        ),
        POLICY,
        NOW,
    )
    records = plan.view.lookup(WEB)
    assert records is not None and records.cname == "lb-123.elb.example.net." and not records.a
    pinned = plan.view.lookup("us-east." + WEB)
    assert pinned is not None and pinned.cname == "lb-123.elb.example.net."
    srv = plan.view.lookup("_http._tcp." + WEB)
    assert srv is not None and srv.srv[0].target == "lb-123.elb.example.net."


def test_disagreeing_annotations_are_reported() -> None:
    snap = fleet(
        {"mcobs.io/strategy": "all"},
        us_east={
            "service": service(
                "us-east", ("198.51.100.1",), annotations={"mcobs.io/strategy": "failover"}
            )
        },
    )
    plan = build_zone(snap, POLICY, NOW).services[ServiceKey("default", "web")]
    assert plan.strategy == "all"
    assert any("clusters disagree on strategy" in p for p in plan.problems)
