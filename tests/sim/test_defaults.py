"""The default fleet: names, regions and predictable documentation-range addresses."""

from __future__ import annotations

import ipaddress

from mcobs.sim import SimFleet
from mcobs.sim.defaults import lb_ipv4, lb_ipv6

DOC_V4 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
DOC_V6 = ipaddress.ip_network("2001:db8::/32")


def test_names_and_regions() -> None:
    fleet = SimFleet.default(clusters=5, tls=False)

    assert fleet.names == ("eu-west", "us-east", "ap-south", "sim-04", "sim-05")
    assert [c.region for c in fleet.clusters] == [
        "europe-west",
        "us-east",
        "asia-south",
        "europe-west",
        "us-east",
    ]


def test_each_cluster_exports_web_and_api_and_hides_internal() -> None:
    cluster = SimFleet.default(clusters=1, tls=False).cluster("eu-west")

    views = {(v.namespace, v.name): v for v in cluster.services()}
    assert set(views) == {("default", "web"), ("default", "api"), ("kube-system", "internal")}
    assert views["default", "web"].annotations == {"mcobs.io/global": "true"}
    assert views["default", "api"].ports[0].port == 9090
    assert views["kube-system", "internal"].annotations == {}
    assert views["kube-system", "internal"].type == "ClusterIP"
    assert (views["default", "web"].ready, views["default", "web"].endpoints) == (3, 3)
    assert [n.ready for n in cluster.nodes()] == [True, True, True]


def test_addresses_are_documentation_ranges_and_distinct_across_a_large_fleet() -> None:
    fleet = SimFleet.default(clusters=120, extra_services=4, tls=False)

    v4: list[str] = []
    v6: list[str] = []
    for cluster in fleet.clusters:
        for view in cluster.services():
            if view.type == "LoadBalancer":
                ips = [ipaddress.ip_address(a) for a in view.addresses]
                v4 += [str(a) for a in ips if a.version == 4]
                v6 += [str(a) for a in ips if a.version == 6]
    assert len(v4) == len(v6) == 120 * 6
    assert len(set(v4)) == len(v4)
    assert len(set(v6)) == len(v6)
    assert all(any(ipaddress.ip_address(a) in net for net in DOC_V4) for a in v4)
    assert all(ipaddress.ip_address(a) in DOC_V6 for a in v6)


def test_addresses_are_predictable() -> None:
    assert [lb_ipv4(i, 0) for i in range(4)] == [
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "192.0.2.3",
    ]
    assert lb_ipv6(0, 1) == "2001:db8:1::2"
