"""mcobs answers the queries resolvers in front of it send, as the RFCs require.

Validating resolvers (unbound with its validator, BIND with `dnssec-validation
auto`, dnsmasq with `dnssec`) set the DO bit on every query they send to mcobs.
"""

from __future__ import annotations

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from mcobs.hub import Hub
from tests.resolvers.helpers import QUERY_TIMEOUT, WEB, ZONE


@pytest.mark.parametrize("name", [WEB, f"nope.default.{ZONE}"])
async def test_the_do_bit_of_a_validating_resolver_is_echoed(hub: Hub, name: str) -> None:
    query = dns.message.make_query(name, "A", use_edns=0, payload=1232, want_dnssec=True)
    query.flags &= ~dns.flags.RD  # as unbound asks a stub
    response = await dns.asyncquery.udp(
        query, "127.0.0.1", port=hub.dns_port, timeout=QUERY_TIMEOUT
    )
    assert response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    assert response.edns == 0
    assert response.ednsflags & dns.flags.DO, "RFC 3225: the DO bit MUST be copied"
