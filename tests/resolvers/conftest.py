"""mcobs (simulated clusters, in-memory catalog) with a real resolver in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcobs.catalog.memory import MemoryCatalog
from mcobs.cli import demo_settings
from mcobs.config import Settings
from mcobs.hub import Hub
from mcobs.sim.cluster import ServiceSpec
from mcobs.sim.fleet import SimFleet
from mcobs.sim.state import frozen_map
from tests.resolver_servers import Dnsmasq, ResolverProcess, Unbound
from tests.resolvers.helpers import (
    BIG,
    BIG_ADDRESSES,
    TTL,
    WEB,
    direct_records,
    eventually,
)

RESOLVERS: dict[str, type[Unbound] | type[Dnsmasq]] = {"unbound": Unbound, "dnsmasq": Dnsmasq}


def big_service(index: int) -> ServiceSpec:
    """`big`: BIG_ADDRESSES IPv6 load-balancer addresses per cluster, so its AAAA answer
    (28 bytes a record) is far over the 1232 bytes mcobs sends over UDP."""
    return ServiceSpec(
        namespace="default",
        name="big",
        addresses=tuple(f"2001:db8:b{index:x}::{n:x}" for n in range(1, BIG_ADDRESSES + 1)),
        annotations=frozen_map({"mcobs.io/global": "true"}),
    )


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    fleet = SimFleet.default(clusters=3)
    for cluster in fleet.clusters:
        fleet.put_service(cluster.name, big_service(cluster.index))
    async with fleet:
        yield fleet


@pytest.fixture
def settings(fleet: SimFleet, tmp_path: Path) -> Settings:
    demo = demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)
    return demo.model_copy(update={"dns": demo.dns.model_copy(update={"default_ttl": TTL})})


@pytest.fixture
async def hub(settings: Settings, fleet: SimFleet) -> AsyncIterator[Hub]:
    """The hub, once it answers `web` with every cluster and `big` at all."""
    async with Hub(settings, MemoryCatalog()) as running:
        port = running.dns_port

        async def ready() -> bool:
            web = await direct_records(port, WEB, "A")
            big = await direct_records(port, BIG, "AAAA", tcp=True)
            return len(web) == len(fleet.names) and bool(big)

        await eventually(ready, limit=10.0)
        yield running


@pytest.fixture(params=sorted(RESOLVERS))
async def resolver(
    request: pytest.FixtureRequest, hub: Hub, tmp_path: Path
) -> AsyncIterator[ResolverProcess]:
    """unbound or dnsmasq, configured from dns/, forwarding the zone to `hub`."""
    kind = RESOLVERS[request.param]
    async with kind.in_front_of(hub.dns_port, tmp_path / request.param) as running:
        yield running
