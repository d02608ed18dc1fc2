"""The default simulated fleet: names, regions, Services, addresses and series.

Everything is a deterministic function of the cluster's index, so tests can
predict names and addresses. Load-balancer addresses come only from the
documentation ranges: IPv4 from 192.0.2.0/24, 198.51.100.0/24 and
203.0.113.0/24 (RFC 5737) by cluster index modulo 3, IPv6 from 2001:db8::/32
(RFC 3849). The three IPv4 ranges hold 762 addresses; past that many
load-balanced Services in a fleet, IPv4 addresses repeat (IPv6 ones never do).
"""

from __future__ import annotations

import ipaddress

from mcobs.annotations import GLOBAL
from mcobs.sim.cluster import ServiceSpec, SimCluster
from mcobs.sim.state import Port, frozen_map

NAMES = ("eu-west", "us-east", "ap-south")
REGIONS = ("europe-west", "us-east", "asia-south")
IPV4_NETS = ("192.0.2.0", "198.51.100.0", "203.0.113.0")
NODES = 3
ENDPOINTS = 3
EXPORTED = {GLOBAL: "true"}


def cluster_name(index: int) -> str:
    """`eu-west`, `us-east`, `ap-south`, then `sim-04`, `sim-05`, ..."""
    return NAMES[index] if index < len(NAMES) else f"sim-{index + 1:02d}"


def region(index: int) -> str:
    return REGIONS[index % len(REGIONS)]


def lb_ipv4(index: int, slot: int, per_cluster: int = 2) -> str:
    """The IPv4 ingress of the `slot`-th load-balanced Service of cluster `index`.

    Cluster 0 gets 192.0.2.1, .2, ...; cluster 1 198.51.100.1, ...; cluster 2
    203.0.113.1, ...; cluster 3 continues in 192.0.2.0/24 after cluster 0's block.
    """
    base = int(ipaddress.IPv4Address(IPV4_NETS[index % 3]))
    host = 1 + ((index // 3) * per_cluster + slot) % 254
    return str(ipaddress.IPv4Address(base + host))


def lb_ipv6(index: int, slot: int) -> str:
    """`2001:db8:<index+1>::<slot+1>` (hex groups)."""
    return str(ipaddress.IPv6Address(f"2001:db8:{index + 1:x}::{slot + 1:x}"))


def exported_specs(index: int, extra_services: int = 0) -> list[ServiceSpec]:
    """`web` (http 80) and `api` (grpc 9090) in `default`, then `svc-01`... (http 80)."""
    named = [("web", Port("http", 80, "TCP", 8080)), ("api", Port("grpc", 9090, "TCP"))]
    named += [(f"svc-{n:02d}", Port("http", 80, "TCP", 8080)) for n in range(1, extra_services + 1)]
    per_cluster = len(named)
    return [
        ServiceSpec(
            namespace="default",
            name=name,
            type="LoadBalancer",
            ports=(port,),
            annotations=frozen_map(EXPORTED),
            labels=frozen_map({"app": name}),
            addresses=(lb_ipv4(index, slot, per_cluster), lb_ipv6(index, slot)),
            endpoints=ENDPOINTS,
            ready=ENDPOINTS,
        )
        for slot, (name, port) in enumerate(named)
    ]


INTERNAL = ServiceSpec(
    namespace="kube-system",
    name="internal",
    type="ClusterIP",
    ports=(Port("metrics", 8080, "TCP"),),
    labels=frozen_map({"app": "internal"}),
    endpoints=2,
    ready=2,
)


def populate(cluster: SimCluster, *, extra_services: int = 0) -> None:
    """Give `cluster` its default nodes, Services and Prometheus series."""
    zones = [f"{cluster.region}-{z}" for z in "abc"]
    for n in range(1, NODES + 1):
        cluster.add_node(
            f"{cluster.name}-node-{n}",
            labels={
                "topology.kubernetes.io/region": cluster.region,
                "topology.kubernetes.io/zone": zones[(n - 1) % len(zones)],
            },
        )
    specs = exported_specs(cluster.index, extra_services)
    for spec in [*specs, INTERNAL]:
        cluster.put_service(spec)
    series = cluster.series
    series.set("up", {"job": "apiserver", "instance": "apiserver:6443"}, 1)
    series.set("up", {"job": "kube-state-metrics", "instance": "kube-state-metrics:8080"}, 1)
    for node in cluster.nodes():
        series.set("up", {"job": "node-exporter", "instance": f"{node.meta.name}:9100"}, 1)
    for spec in specs:
        for code, value in (("200", 1000), ("500", 0)):
            labels = {"namespace": spec.namespace, "service": spec.name, "code": code}
            series.set("http_requests_total", labels, value)
