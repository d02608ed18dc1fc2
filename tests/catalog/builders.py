"""Report builders for the catalog tests: one rich hand-made report, many random ones."""

from __future__ import annotations

import ipaddress
import random
from types import MappingProxyType

from mcobs.model import (
    ApiProbe,
    ClusterReport,
    ClusterService,
    Health,
    HealthState,
    ServiceKey,
    ServicePort,
    Signal,
)


def service(
    cluster: str, name: str = "web", *, addresses: tuple[str, ...] = ("192.0.2.1",)
) -> ClusterService:
    return ClusterService(
        cluster=cluster,
        key=ServiceKey("default", name),
        addresses=addresses,
        hostnames=("lb.example.net",),
        ports=(ServicePort("http", 80, "TCP"), ServicePort("dns", 53, "UDP")),
        ready_endpoints=2,
        total_endpoints=3,
        annotations=MappingProxyType({"mcobs.io/global": "true", "mcobs.io/weight": "5"}),
        problems=("dropped hostname 'bad host'",),
    )


def report(
    cluster: str = "eu-west",
    *,
    services: int = 1,
    observed_at: float = 1_700_000_000.25,
    tag: str = "",
) -> ClusterReport:
    """A report whose every service name carries `tag`, so a mixed report is detectable."""
    return ClusterReport(
        cluster=cluster,
        region="europe",
        observed_at=observed_at,
        probe=ApiProbe(
            reachable=True, latency_s=0.012, readyz_ok=True, nodes_ready=3, nodes_total=4
        ),
        health=Health(0.75, HealthState.DEGRADED, ("1 of 4 nodes not ready",)),
        services=tuple(service(cluster, f"svc{tag}-{i}") for i in range(services)),
        signals=(Signal("apiserver_errors", 0.5), Signal("cpu", None, "query timed out")),
        weight=2.5,
        priority=1,
        labels=MappingProxyType({"cloud": "aws", "env": "prod"}),
        services_synced=True,
    )


_ALPHABET = 'abcxyz-09_./é中 "\\\n'


def _text(rng: random.Random, *, empty: bool = True) -> str:
    n = rng.randint(0 if empty else 1, 8)
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def _float(rng: random.Random) -> float:
    return rng.choice([0.0, -0.0, 1.0, 1e-300, 1e300, -3.5, rng.uniform(-1e6, 1e6)])


def _address(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return str(ipaddress.IPv4Address(rng.getrandbits(32)))
    return str(ipaddress.IPv6Address(rng.getrandbits(128)))


def random_report(rng: random.Random) -> ClusterReport:
    """A valid report with arbitrary (finite) content."""
    cluster = _text(rng, empty=False)
    services = tuple(
        ClusterService(
            cluster=cluster,
            key=ServiceKey(_text(rng, empty=False), _text(rng, empty=False)),
            addresses=tuple(_address(rng) for _ in range(rng.randint(0, 3))),
            hostnames=tuple(_text(rng) for _ in range(rng.randint(0, 2))),
            ports=tuple(
                ServicePort(_text(rng), rng.randint(0, 65535), rng.choice(["TCP", "UDP", "SCTP"]))
                for _ in range(rng.randint(0, 3))
            ),
            ready_endpoints=rng.randint(0, 100),
            total_endpoints=rng.randint(0, 100),
            annotations=MappingProxyType(
                {_text(rng): _text(rng) for _ in range(rng.randint(0, 3))}
            ),
            problems=tuple(_text(rng) for _ in range(rng.randint(0, 2))),
        )
        for _ in range(rng.randint(0, 4))
    )
    return ClusterReport(
        cluster=cluster,
        region=_text(rng),
        observed_at=_float(rng),
        probe=ApiProbe(
            reachable=rng.random() < 0.5,
            latency_s=rng.choice([None, _float(rng)]),
            readyz_ok=rng.choice([None, True, False]),
            nodes_ready=rng.randint(0, 10),
            nodes_total=rng.randint(0, 10),
            error=rng.choice([None, _text(rng)]),
        ),
        health=Health(
            _float(rng),
            rng.choice(list(HealthState)),
            tuple(_text(rng) for _ in range(rng.randint(0, 3))),
        ),
        services=services,
        signals=tuple(
            Signal(
                _text(rng, empty=False),
                rng.choice([None, _float(rng)]),
                rng.choice([None, _text(rng)]),
            )
            for _ in range(rng.randint(0, 3))
        ),
        weight=_float(rng),
        priority=rng.randint(-(2**63), 2**63 - 1),
        labels=MappingProxyType({_text(rng): _text(rng) for _ in range(rng.randint(0, 3))}),
        services_synced=rng.random() < 0.5,
    )
