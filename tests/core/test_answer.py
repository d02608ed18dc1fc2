from dataclasses import replace
from types import MappingProxyType

from mcobs.answer import ZonePolicy, build_zone
from mcobs.model import Health, HealthState, ServiceKey
from mcobs.zone import Nameserver

from .factories import report, service, snapshot

ZONE = "global.example.com."
POLICY = ZonePolicy(
    origin=ZONE,
    nameservers=(Nameserver("ns1." + ZONE, ("127.0.0.1",)),),
    default_ttl=5,
    negative_ttl=30,
    stale_after=30.0,
)
NOW = 1010.0
DOWN = Health(0.0, HealthState.DOWN, ("API unreachable",))
DEGRADED = Health(0.5, HealthState.DEGRADED, ("signal low",))


def fleet(**overrides):  # type: ignore[no-untyped-def]
    reports = {
        "eu-west": report("eu-west", (service("eu-west", ("192.0.2.10", "2001:db8:1::10")),)),
        "us-east": report("us-east", (service("us-east", ("198.51.100.10",)),)),
        "ap-south": report("ap-south", (service("ap-south", ("203.0.113.10",)),)),
    }
    reports.update(overrides)
    return snapshot(*reports.values())


def test_healthy_clusters_answer_ordered_by_weight_times_health() -> None:
    snap = fleet(
        **{
            "us-east": report("us-east", (service("us-east", ("198.51.100.10",)),), weight=3.0),
            "ap-south": report(
                "ap-south", (service("ap-south", ("203.0.113.10",)),), health=DEGRADED
            ),
        }
    )
    view = build_zone(snap, replace(POLICY, strategy="all"), NOW).view
    records = view.lookup("web.default." + ZONE)
    assert records is not None
    assert records.a == ("198.51.100.10", "192.0.2.10", "203.0.113.10")
    assert records.aaaa == ("2001:db8:1::10",)
    assert records.ttl == 5


def test_down_cluster_leaves_answer_with_reason() -> None:
    plan = build_zone(
        fleet(
            **{"us-east": report("us-east", (service("us-east", ("198.51.100.10",)),), health=DOWN)}
        ),
        POLICY,
        NOW,
    )
    records = plan.view.lookup("web.default." + ZONE)
    assert records is not None and "198.51.100.10" not in records.a
    choice = {c.cluster: c for c in plan.services[ServiceKey("default", "web")].choices}["us-east"]
    assert not choice.in_answer
    assert "down" in choice.reason and "API unreachable" in choice.reason


def test_unready_endpoints_remove_only_that_cluster_for_that_service() -> None:
    snap = fleet(**{"eu-west": report("eu-west", (service("eu-west", ("192.0.2.10",), ready=0),))})
    plan = build_zone(snap, POLICY, NOW)
    records = plan.view.lookup("web.default." + ZONE)
    assert records is not None and set(records.a) == {"203.0.113.10", "198.51.100.10"}
    reason = {c.cluster: c.reason for c in plan.services[ServiceKey("default", "web")].choices}
    assert reason["eu-west"] == "no ready endpoints (0 of 3)"


def test_stale_report_counts_as_down() -> None:
    snap = fleet(
        **{
            "ap-south": report(
                "ap-south", (service("ap-south", ("203.0.113.10",)),), observed_at=900.0
            )
        }
    )
    plan = build_zone(snap, POLICY, NOW)
    records = plan.view.lookup("web.default." + ZONE)
    assert records is not None and "203.0.113.10" not in records.a
    ap = next(
        c for c in plan.services[ServiceKey("default", "web")].choices if c.cluster == "ap-south"
    )
    assert "stale" in ap.reason


def test_last_resort_answers_every_cluster_when_none_is_healthy() -> None:
    snap = fleet(
        **{
            name: report(name, (service(name, (ip,)),), health=DOWN)
            for name, ip in (
                ("eu-west", "192.0.2.10"),
                ("us-east", "198.51.100.10"),
                ("ap-south", "203.0.113.10"),
            )
        }
    )
    plan = build_zone(snap, POLICY, NOW)
    web = plan.services[ServiceKey("default", "web")]
    assert web.last_resort
    records = plan.view.lookup("web.default." + ZONE)
    assert records is not None and sorted(records.a) == [
        "192.0.2.10",
        "198.51.100.10",
        "203.0.113.10",
    ]
    assert all(c.reason.startswith("last resort") for c in web.choices)


def test_srv_per_healthy_cluster_with_resolvable_targets() -> None:
    snap = fleet(
        **{"ap-south": report("ap-south", (service("ap-south", ("203.0.113.10",)),), health=DOWN)}
    )
    view = build_zone(snap, POLICY, NOW).view
    srv = view.lookup("_http._tcp.web.default." + ZONE)
    assert srv is not None
    targets = sorted(r.target for r in srv.srv)
    assert targets == ["eu-west.web.default." + ZONE, "us-east.web.default." + ZONE]
    assert all(r.port == 80 and r.weight >= 1 for r in srv.srv)
    for target in targets:
        pinned = view.lookup(target)
        assert pinned is not None and pinned.a


def test_names_without_data_exist_and_unknown_names_do_not() -> None:
    view = build_zone(fleet(), POLICY, NOW).view
    namespace = view.lookup("default." + ZONE)
    assert namespace is not None and namespace.empty
    proto = view.lookup("_tcp.web.default." + ZONE)
    assert proto is not None and proto.empty
    assert view.lookup("nope.default." + ZONE) is None
    glue = view.lookup("ns1." + ZONE)
    assert glue is not None and glue.a == ("127.0.0.1",)


def test_ttl_annotation_and_bad_annotations_are_reported_not_used() -> None:
    snap = fleet(
        **{
            "eu-west": report(
                "eu-west",
                (service("eu-west", ("192.0.2.10",), annotations={"mcobs.io/ttl": "60"}),),
            ),
            "us-east": report(
                "us-east",
                (
                    service(
                        "us-east",
                        ("198.51.100.10",),
                        annotations={"mcobs.io/ttl": "soon", "mcobs.io/colour": "red"},
                    ),
                ),
            ),
        }
    )
    plan = build_zone(snap, POLICY, NOW)
    web = plan.services[ServiceKey("default", "web")]
    assert web.ttl == 60
    assert any("mcobs.io/ttl: 'soon'" in p for p in web.problems)
    assert any("mcobs.io/colour: unknown annotation" in p for p in web.problems)


def test_zero_weight_cluster_never_answers() -> None:
    snap = fleet(**{"eu-west": report("eu-west", (service("eu-west", ("192.0.2.10",)),), weight=0)})
    records = build_zone(snap, POLICY, NOW).view.lookup("web.default." + ZONE)
    assert records is not None and "192.0.2.10" not in records.a


def test_soa_serial_is_the_one_given() -> None:
    assert build_zone(fleet(), POLICY, NOW, serial=1795000000).view.soa.serial == 1795000000


def test_the_builder_rebuilds_only_services_whose_inputs_changed() -> None:
    from mcobs.answer import ZoneBuilder

    api = ServiceKey("default", "api")
    base = fleet()
    with_api = snapshot(
        *(
            replace(r, services=(*r.services, service(r.cluster, ("192.0.2.99",), key=api)))
            for r in base.reports.values()
        )
    )
    builder = ZoneBuilder(POLICY)
    first = builder.build(with_api, NOW)
    changed = replace(
        with_api,
        reports=MappingProxyType(
            {
                **with_api.reports,
                "us-east": replace(
                    with_api.reports["us-east"],
                    services=(
                        service("us-east", ("198.51.100.77",)),
                        *with_api.reports["us-east"].services[1:],
                    ),
                ),
            }
        ),
    )
    second = builder.build(changed, NOW)
    assert second.services[api] is first.services[api]  # untouched: the same objects
    assert second.view.names["api.default." + ZONE] is first.view.names["api.default." + ZONE]
    assert (
        second.services[ServiceKey("default", "web")]
        is not first.services[ServiceKey("default", "web")]
    )
    records = second.view.lookup("web.default." + ZONE)
    assert records is not None and "198.51.100.77" in records.a
