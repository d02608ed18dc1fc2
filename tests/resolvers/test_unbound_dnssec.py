"""mcobs does not sign its zone: a validating unbound needs the snippet's `domain-insecure`.

The resolver here holds a trust anchor for the parent, example.com, as a
validating resolver effectively does when the parent is signed; the parent's
keys cannot be fetched (its only server, mcobs, refuses the name), so nothing
below it can be proven secure or insecure -- unless the zone is marked insecure.
"""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.rcode

from mcobs.hub import Hub
from mcobs.sim.fleet import SimFleet
from tests.resolver_servers import Unbound
from tests.resolvers.helpers import WEB, ask, lb_addresses, records

INSECURE = 'domain-insecure: "global.example.com"'


def signed_parent(mcobs_port: int) -> str:
    """A (made-up) trust anchor for example.com, whose only server is mcobs."""
    return f"""    trust-anchor: "example.com. DS 12345 13 2 {"ab" * 32}"
    val-log-level: 2
stub-zone:
    name: "example.com"
    stub-addr: 127.0.0.1@{mcobs_port}
"""


async def test_validating_unbound_answers_for_the_zone_marked_insecure(
    fleet: SimFleet, hub: Hub, tmp_path: Path
) -> None:
    ipv4 = {lb_addresses(fleet, c)[0] for c in fleet.names}
    resolver = Unbound.in_front_of(hub.dns_port, tmp_path, extra=signed_parent(hub.dns_port))
    async with resolver:
        response = await ask(resolver.port, WEB, "A")
    assert response.rcode() == dns.rcode.NOERROR, resolver.log()
    assert records(response, "A") == ipv4
    assert not response.flags & dns.flags.AD  # insecure, not validated


async def test_without_domain_insecure_the_same_unbound_fails(hub: Hub, tmp_path: Path) -> None:
    def drop_insecure(text: str) -> str:
        assert INSECURE in text
        return text.replace(INSECURE, "")

    resolver = Unbound.in_front_of(
        hub.dns_port, tmp_path, extra=signed_parent(hub.dns_port), edit=drop_insecure
    )
    async with resolver:
        response = await ask(resolver.port, WEB, "A")
    assert response.rcode() == dns.rcode.SERVFAIL
    assert "validation failure" in resolver.log()
