"""Drains by people and alerts from Alertmanager, as answers see them."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from mcobs.answer import ZonePolicy, build_zone
from mcobs.model import AlertMark, CatalogSnapshot, Drain, Health, HealthState, Scope, ServiceKey
from mcobs.zone import Nameserver

from .factories import report, service, snapshot

ZONE = "global.example.com."
WEB = "web.default." + ZONE
API = "api.default." + ZONE
POLICY = ZonePolicy(origin=ZONE, nameservers=(Nameserver("ns1." + ZONE),), strategy="all")
NOW = 1010.0
WEB_KEY = ServiceKey("default", "web")
API_KEY = ServiceKey("default", "api")


def fleet(**overrides: object) -> CatalogSnapshot:
    reports = []
    for name, ip, api_ip in (
        ("eu-west", "192.0.2.1", "192.0.2.2"),
        ("us-east", "198.51.100.1", "198.51.100.2"),
    ):
        reports.append(report(name, (service(name, (ip,)), service(name, (api_ip,), key=API_KEY))))
    return replace(snapshot(*reports), **overrides)  # type: ignore[arg-type]


def answer(snap: CatalogSnapshot, name: str = WEB) -> set[str]:
    records = build_zone(snap, POLICY, NOW).view.lookup(name)
    assert records is not None
    return set(records.a)


def reasons(snap: CatalogSnapshot, key: ServiceKey = WEB_KEY) -> dict[str, str]:
    plan = build_zone(snap, POLICY, NOW).services[key]
    return {c.cluster: c.reason for c in plan.choices}


def test_draining_a_cluster_takes_it_out_of_every_answer() -> None:
    drain = Drain(Scope("eu-west"), "kernel upgrade", created_at=1000, by="alice")
    snap = fleet(drains=MappingProxyType({"eu-west": drain}))
    assert answer(snap) == {"198.51.100.1"}
    assert answer(snap, API) == {"198.51.100.2"}
    assert reasons(snap)["eu-west"] == "cluster is drained: drained by alice: kernel upgrade"


def test_draining_one_service_in_one_cluster() -> None:
    drain = Drain(Scope("eu-west", WEB_KEY), "bad deploy", created_at=1000, expires_at=2000)
    snap = fleet(drains=MappingProxyType({"eu-west/default/web": drain}))
    assert answer(snap) == {"198.51.100.1"}
    assert answer(snap, API) == {"192.0.2.2", "198.51.100.2"}
    assert "service is drained in this cluster" in reasons(snap)["eu-west"]
    assert "until 1970-01-01T00:33:20Z" in reasons(snap)["eu-west"]


def test_an_expired_drain_counts_for_nothing() -> None:
    drain = Drain(Scope("eu-west"), "done", created_at=900, expires_at=1000)
    assert answer(fleet(drains=MappingProxyType({"eu-west": drain}))) == {
        "192.0.2.1",
        "198.51.100.1",
    }


def test_a_critical_alert_downs_its_scope_and_others_degrade() -> None:
    critical = AlertMark("fp1", Scope("us-east"), "KubeAPIErrorsHigh", "critical", True, 1000)
    snap = fleet(alerts=MappingProxyType({"fp1": critical}))
    assert answer(snap) == {"192.0.2.1"}
    assert "alert KubeAPIErrorsHigh (critical) firing" in reasons(snap)["us-east"]

    warning = AlertMark("fp2", Scope("us-east", WEB_KEY), "SlowRequests", "warning", False, 1000)
    snap = fleet(alerts=MappingProxyType({"fp2": warning}))
    plan = build_zone(snap, POLICY, NOW).services[WEB_KEY]
    us = next(c for c in plan.choices if c.cluster == "us-east")
    assert us.in_answer and us.rank == 0.5
    assert plan.choices[0].cluster == "eu-west"  # the degraded cluster answers last


def test_an_alert_past_its_end_is_ignored() -> None:
    old = AlertMark("fp1", Scope("us-east"), "X", "critical", True, 900, ends_at=1000)
    assert answer(fleet(alerts=MappingProxyType({"fp1": old}))) == {"192.0.2.1", "198.51.100.1"}


def test_a_service_health_from_probes_excludes_it() -> None:
    probed = replace(
        service("us-east", ("198.51.100.1",)),
        health=Health(0.0, HealthState.DOWN, ("probe http://198.51.100.1:80/ failed: timed out",)),
    )
    snap = snapshot(
        report("eu-west", (service("eu-west", ("192.0.2.1",)),)), report("us-east", (probed,))
    )
    assert answer(snap) == {"192.0.2.1"}
    assert "probe http://198.51.100.1:80/ failed" in reasons(snap)["us-east"]
