"""A client asks a real unbound or dnsmasq, configured from dns/, that asks mcobs.

What a user behind their resolver notices: the addresses, the SRV targets, big
answers arriving whole (over TCP), the failed-over answer once the cached one
expires, and NXDOMAIN/NODATA that the resolver can cache for the SOA minimum.
"""

from __future__ import annotations

import asyncio
import time

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from mcobs.hub import Hub
from mcobs.sim.fleet import SimFleet
from tests.resolver_servers import ResolverProcess, dig
from tests.resolvers.helpers import (
    BIG,
    NEGATIVE_TTL,
    TTL,
    WEB,
    WEB_SRV,
    ZONE,
    answer_ttl,
    ask,
    direct_records,
    eventually,
    lb_addresses,
    records,
)

UDP_LIMIT = 1232
"""The most mcobs sends over UDP (and the EDNS size both resolvers use)."""


async def test_a_and_aaaa_through_the_resolver(
    fleet: SimFleet, hub: Hub, resolver: ResolverProcess
) -> None:
    ipv4 = {lb_addresses(fleet, c)[0] for c in fleet.names}
    ipv6 = {lb_addresses(fleet, c)[1] for c in fleet.names}

    a = await ask(resolver.port, WEB, "A")
    assert a.rcode() == dns.rcode.NOERROR
    assert records(a, "A") == ipv4
    assert 0 < answer_ttl(a) <= TTL
    assert records(await ask(resolver.port, WEB, "AAAA"), "AAAA") == ipv6

    # The same through dig, as a user would check it.
    assert set((await dig(resolver.port, WEB, "A", "+short")).split()) == ipv4
    assert set((await dig(resolver.port, WEB, "AAAA", "+short")).split()) == ipv6

    # A cluster-pinned name answers with that cluster's addresses only.
    pinned = f"eu-west.{WEB}"
    assert records(await ask(resolver.port, pinned, "A"), "A") == {
        lb_addresses(fleet, "eu-west")[0]
    }


async def test_srv_targets_resolve_through_the_resolver(
    fleet: SimFleet, hub: Hub, resolver: ResolverProcess
) -> None:
    srv = await ask(resolver.port, WEB_SRV, "SRV")
    assert srv.rcode() == dns.rcode.NOERROR
    found = [rr for rrset in srv.answer if rrset.rdtype == dns.rdatatype.SRV for rr in rrset]
    assert {rr.target.to_text() for rr in found} == {f"{c}.{WEB}" for c in fleet.names}
    assert {rr.port for rr in found} == {80}

    for cluster in fleet.names:
        ipv4, ipv6 = lb_addresses(fleet, cluster)
        target = f"{cluster}.{WEB}"
        assert records(await ask(resolver.port, target, "A"), "A") == {ipv4}
        assert records(await ask(resolver.port, target, "AAAA"), "AAAA") == {ipv6}

    dug = (await dig(resolver.port, WEB_SRV, "SRV", "+short")).splitlines()
    assert sorted(line.split()[-1] for line in dug) == sorted(f"{c}.{WEB}" for c in fleet.names)


async def test_a_large_answer_arrives_whole_over_tcp(hub: Hub, resolver: ResolverProcess) -> None:
    everything = await ask(hub.dns_port, BIG, "AAAA", tcp=True)
    expected = records(everything, "AAAA")
    assert len(everything.to_wire()) > UDP_LIMIT
    truncated = await ask(hub.dns_port, BIG, "AAAA")
    assert truncated.flags & dns.flags.TC  # mcobs itself cannot send it over UDP

    assert hub.dns is not None
    tcp_before = hub.dns.stats.tcp_connections
    query = dns.message.make_query(BIG, "AAAA")
    response, used_tcp = await dns.asyncquery.udp_with_fallback(
        query, "127.0.0.1", port=resolver.port, timeout=3
    )
    assert used_tcp, "the resolver should have truncated its UDP answer"
    assert response.rcode() == dns.rcode.NOERROR
    assert records(response, "AAAA") == expected
    assert hub.dns.stats.tcp_connections > tcp_before, "the resolver never asked mcobs over TCP"

    output = await dig(resolver.port, BIG, "AAAA")
    assert "Truncated, retrying in TCP mode" in output
    assert f"ANSWER: {len(expected)}," in output


async def test_failover_shows_once_the_cached_answer_expires(
    fleet: SimFleet, hub: Hub, resolver: ResolverProcess
) -> None:
    everyone = {lb_addresses(fleet, c)[0] for c in fleet.names}
    failed_over = everyone - {lb_addresses(fleet, "us-east")[0]}

    cached = await ask(resolver.port, WEB, "A")
    cached_at = time.monotonic()
    assert records(cached, "A") == everyone
    assert answer_ttl(cached) == TTL  # fresh from mcobs

    await fleet.outage("us-east")

    async def mcobs_failed_over() -> bool:
        return await direct_records(hub.dns_port, WEB, "A") == failed_over

    await eventually(mcobs_failed_over, limit=TTL - 1.5)
    # Resolvers count TTLs in whole seconds: after a full second the copy's TTL has
    # gone down by at least one, which shows it comes from the cache.
    await asyncio.sleep(max(0.0, cached_at + 1.0 - time.monotonic()))
    # mcobs already answers without us-east; the resolver still serves its copy.
    stale = await ask(resolver.port, WEB, "A")
    assert time.monotonic() - cached_at < TTL - 1.0, "too slow to see the cached answer"
    assert records(stale, "A") == everyone
    assert answer_ttl(stale) < TTL

    async def resolver_failed_over() -> bool:
        return records(await ask(resolver.port, WEB, "A"), "A") == failed_over

    await eventually(resolver_failed_over, limit=TTL + 3.0)
    # Counted in whole seconds, the copy may expire up to a second early.
    assert time.monotonic() - cached_at >= TTL - 1.0


async def test_nxdomain_and_nodata_pass_through_with_the_soa(
    hub: Hub, resolver: ResolverProcess
) -> None:
    missing = await ask(resolver.port, f"nope.default.{ZONE}", "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert not missing.answer
    _assert_soa(missing)

    nodata = await ask(resolver.port, WEB, "TXT")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert not nodata.answer
    _assert_soa(nodata)

    dug = await dig(resolver.port, f"nothing-here.{ZONE}", "A")
    assert "status: NXDOMAIN" in dug
    assert "SOA" in dug.split("AUTHORITY SECTION:", 1)[1]


def _assert_soa(response: dns.message.Message) -> None:
    """The zone's SOA in the authority section, so the resolver can cache the denial
    for min(SOA TTL, SOA minimum) (RFC 2308)."""
    soas = [rrset for rrset in response.authority if rrset.rdtype == dns.rdatatype.SOA]
    assert len(soas) == 1, response.to_text()
    soa = soas[0]
    assert soa.name.to_text() == ZONE
    assert soa[0].minimum == NEGATIVE_TTL
    assert 0 < soa.ttl <= NEGATIVE_TTL
