"""The server as the real `dig` binary sees it."""

from __future__ import annotations

import shutil

import pytest

from mcobs.dnsserver import DnsServer
from tests.dnsserver.support import (
    ALIAS_GEO,
    API,
    BIG,
    GEO,
    NS1,
    WEB,
    WEB_EU,
    WEB_SRV,
    WEB_US,
    ZONE,
    ViewHolder,
    dig,
    dig_many,
    locator,
    swapped_view,
    varied_view,
)

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed")


async def test_a_and_aaaa(server: DnsServer) -> None:
    a = await dig(server.port, WEB, "A")
    assert a.status == "NOERROR"
    assert "aa" in a.flags
    assert a.records("answer") == [(WEB, 30, "A", "10.0.0.1"), (WEB, 30, "A", "10.0.1.1")]
    aaaa = await dig(server.port, API, "AAAA")
    assert aaaa.records("answer") == [(API, 60, "AAAA", "fd00::2")]
    assert server.stats.fast_path == 2  # dig's EDNS cookie does not force the slow path


async def test_srv_with_additional_addresses(server: DnsServer) -> None:
    srv = await dig(server.port, WEB_SRV, "SRV")
    assert srv.records("answer") == [
        (WEB_SRV, 30, "SRV", f"10 60 8080 {WEB_EU}"),
        (WEB_SRV, 30, "SRV", f"10 40 8080 {WEB_US}"),
    ]
    assert srv.records("additional") == [
        (WEB_EU, 30, "A", "10.0.0.1"),
        (WEB_EU, 30, "AAAA", "fd00::1"),
        (WEB_US, 30, "A", "10.0.1.1"),
    ]


async def test_soa_and_ns_at_apex(server: DnsServer) -> None:
    soa = await dig(server.port, ZONE, "SOA")
    assert soa.records("answer") == [
        (ZONE, 300, "SOA", f"{NS1} hostmaster.{ZONE} 1 3600 600 86400 30")
    ]
    ns = await dig(server.port, ZONE, "NS")
    assert ns.records("answer") == [(ZONE, 300, "NS", NS1)]
    assert ns.records("additional") == [(NS1, 300, "A", "127.0.0.1")]


async def test_nxdomain_versus_nodata(server: DnsServer) -> None:
    nx = await dig(server.port, "nope.default." + ZONE, "A")
    nodata = await dig(server.port, WEB, "TXT")
    assert (nx.status, nodata.status) == ("NXDOMAIN", "NOERROR")
    for result in (nx, nodata):
        assert result.answer == ()
        [(owner, ttl, rdtype, _)] = result.records("authority")
        assert (owner, ttl, rdtype) == (ZONE, 30, "SOA")
        assert "aa" in result.flags


async def test_refused_outside_the_zone(server: DnsServer) -> None:
    result = await dig(server.port, "www.example.org.", "A")
    assert result.status == "REFUSED"
    assert "aa" not in result.flags


@pytest.mark.parametrize("opcode", ["notify", "update"])
async def test_notimp_for_other_opcodes(server: DnsServer, opcode: str) -> None:
    result = await dig(server.port, f"+opcode={opcode}", ZONE, "SOA")
    assert result.status == "NOTIMP"


async def test_badvers(server: DnsServer) -> None:
    result = await dig(server.port, "+edns=1", "+noednsnegotiation", WEB, "A")
    assert result.status == "BADVERS"


async def test_case_is_preserved(server: DnsServer) -> None:
    name = "WeB.dEfAuLt.GLOBAL.example.com."
    result = await dig(server.port, name, "A")
    assert [line.split() for line in result.question] == [[name, "IN", "A"]]
    assert {owner for owner, *_ in result.records("answer")} == {name}


async def test_truncated_over_udp_then_full_over_tcp(server: DnsServer) -> None:
    truncated = await dig(server.port, "+ignore", BIG, "A")
    assert "tc" in truncated.flags
    assert truncated.answer == ()
    retried = await dig(server.port, BIG, "A")  # dig retries over TCP by itself
    assert "tc" not in retried.flags
    assert len(retried.answer) == 100
    assert server.stats.tcp_connections == 1


async def test_several_queries_over_one_tcp_connection(server: DnsServer) -> None:
    results = await dig_many(
        server.port, "+tcp", "+keepopen", WEB, "A", API, "AAAA", ZONE, "SOA", BIG, "A"
    )
    assert [len(r.answer) for r in results] == [2, 1, 1, 100]
    assert server.stats.tcp_connections == 1


async def test_view_swap(server: DnsServer, holder: ViewHolder) -> None:
    assert len((await dig(server.port, WEB, "A")).answer) == 2
    holder.view = swapped_view()
    after = await dig(server.port, WEB, "A")
    assert after.records("answer") == [(WEB, 30, "A", "10.7.7.7")]


async def test_client_subnet_and_tcp_keepalive() -> None:
    view = varied_view()
    async with DnsServer(lambda: view, port=0, locate=locator(), tcp_idle_timeout=3) as server:
        us = await dig(server.port, "+subnet=198.51.100.0/24", GEO, "A")
        assert us.records("answer") == [(GEO, 20, "A", "10.2.0.1")]
        assert "CLIENT-SUBNET: 198.51.100.0/24/24" in us.text
        eu = await dig(server.port, "+subnet=192.0.2.0/24", ALIAS_GEO, "A")
        assert eu.records("answer") == [(ALIAS_GEO, 40, "CNAME", GEO), (GEO, 20, "A", "10.1.0.1")]
        plain = await dig(server.port, "+subnet=192.0.2.0/24", WEB, "A")
        assert "CLIENT-SUBNET: 192.0.2.0/24/0" in plain.text
        keepalive = await dig(server.port, "+tcp", "+keepalive", WEB, "A")
        assert "TCP KEEPALIVE: 3.0 secs" in keepalive.text
