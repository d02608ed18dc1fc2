"""The server over real sockets, queried with dnspython's async client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from mcobs.dnsserver import DnsServer
from mcobs.zone import ZoneView
from tests.dnsserver.support import (
    API,
    BIG,
    BIG_ADDRESSES,
    NS1,
    WEB,
    WEB_EU,
    WEB_SRV,
    WEB_US,
    ZONE,
    TcpClient,
    ViewHolder,
    query_wire,
    swapped_view,
    udp_exchange,
    udp_silence,
)

TIMEOUT = 2.0


async def udp(server: DnsServer, name: str, rdtype: str, **kw: object) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=TIMEOUT)


async def tcp(server: DnsServer, name: str, rdtype: str, **kw: object) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=TIMEOUT)


Ask = Callable[..., Awaitable[dns.message.Message]]


def texts(message: dns.message.Message, section: str = "answer") -> list[str]:
    return [rrset.to_text() for rrset in getattr(message, section)]


async def test_binds_one_free_port_for_udp_and_tcp(server: DnsServer) -> None:
    assert server.port > 0
    assert server.udp_port == server.tcp_port == server.port


@pytest.mark.parametrize("transport", [udp, tcp])
async def test_a_aaaa_srv(server: DnsServer, transport: Ask) -> None:
    ask = transport
    a = await ask(server, WEB, "A")
    assert texts(a) == [f"{WEB} 30 IN A 10.0.0.1\n{WEB} 30 IN A 10.0.1.1"]
    assert a.flags & dns.flags.AA
    aaaa = await ask(server, API, "AAAA")
    assert texts(aaaa) == [f"{API} 60 IN AAAA fd00::2"]
    srv = await ask(server, WEB_SRV, "SRV", use_edns=0)
    assert [rdata.target.to_text() for rdata in srv.answer[0]] == [WEB_EU, WEB_US]
    assert texts(srv, "additional") == [
        f"{WEB_EU} 30 IN A 10.0.0.1",
        f"{WEB_EU} 30 IN AAAA fd00::1",
        f"{WEB_US} 30 IN A 10.0.1.1",
    ]


async def test_soa_and_ns_at_apex(server: DnsServer) -> None:
    soa = await udp(server, ZONE, "SOA")
    assert texts(soa) == [f"{ZONE} 300 IN SOA {NS1} hostmaster.{ZONE} 1 3600 600 86400 30"]
    ns = await udp(server, ZONE, "NS")
    assert texts(ns) == [f"{ZONE} 300 IN NS {NS1}"]
    assert texts(ns, "additional") == [f"{NS1} 300 IN A 127.0.0.1"]


async def test_nxdomain_and_nodata_carry_the_soa(server: DnsServer) -> None:
    nx = await udp(server, "nope.default." + ZONE, "A")
    nodata = await udp(server, WEB, "MX")
    ent = await udp(server, "default." + ZONE, "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nodata.rcode() == ent.rcode() == dns.rcode.NOERROR
    for reply in (nx, nodata, ent):
        assert reply.answer == []
        assert [(r.name.to_text(), r.rdtype, r.ttl) for r in reply.authority] == [
            (ZONE, dns.rdatatype.SOA, 30)
        ]


async def test_refused_outside_the_zone(server: DnsServer) -> None:
    reply = await udp(server, "www.example.org.", "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA


async def test_formerr_on_garbage_and_two_questions(server: DnsServer) -> None:
    garbage = bytes.fromhex("5eed01000001000000000000") + b"\x05abc"
    reply = dns.message.from_wire(await udp_exchange(server.port, garbage))
    assert (reply.id, reply.rcode()) == (0x5EED, dns.rcode.FORMERR)
    query = dns.message.make_query(WEB, "A")
    query.question.append(dns.rrset.RRset(dns.name.from_text(API), 1, 1))
    reply = dns.message.from_wire(await udp_exchange(server.port, query.to_wire()))
    assert (reply.id, reply.rcode()) == (query.id, dns.rcode.FORMERR)
    assert server.stats.malformed == 2


async def test_notimp_for_notify_and_update(server: DnsServer) -> None:
    for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE):
        query = dns.message.make_query(ZONE, "SOA")
        query.set_opcode(opcode)
        reply = dns.message.from_wire(await udp_exchange(server.port, query.to_wire()))
        assert (reply.id, reply.opcode(), reply.rcode()) == (query.id, opcode, dns.rcode.NOTIMP)


async def test_badvers(server: DnsServer) -> None:
    reply = await udp(server, WEB, "A", use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0


async def test_case_is_preserved(server: DnsServer) -> None:
    name = "wEb.DEFAULT.Global.Example.Com."
    for reply in (await udp(server, name, "A"), await tcp(server, name, "A")):
        assert reply.question[0].name.to_text() == name
        assert reply.answer[0].name.to_text() == name


async def test_large_answer_truncated_over_udp_full_over_tcp(server: DnsServer) -> None:
    truncated = await udp(server, BIG, "A", use_edns=0)
    assert truncated.flags & dns.flags.TC
    assert truncated.answer == []
    full = await tcp(server, BIG, "A", use_edns=0)
    assert not full.flags & dns.flags.TC
    assert [rdata.to_text() for rdata in full.answer[0]] == list(BIG_ADDRESSES)


async def test_several_pipelined_queries_on_one_tcp_connection(server: DnsServer) -> None:
    client = await TcpClient.connect(server.port)
    try:
        names = [WEB, API, BIG, "nope." + ZONE]
        for i, name in enumerate(names):
            client.send(query_wire(name, qid=100 + i))
        replies = [dns.message.from_wire(await client.receive()) for _ in names]
        assert [r.id for r in replies] == [100, 101, 102, 103]
        assert [len(r.answer[0]) if r.answer else 0 for r in replies] == [2, 1, 100, 0]
        # The connection stays usable afterwards.
        client.send(query_wire(WEB, qid=200))
        assert dns.message.from_wire(await client.receive()).id == 200
    finally:
        await client.close()


async def test_idle_tcp_connection_is_closed(holder: ViewHolder) -> None:
    async with DnsServer(holder, port=0, tcp_idle_timeout=0.2) as server:
        client = await TcpClient.connect(server.port)
        try:
            assert await client.closed_by_server()
        finally:
            await client.close()
        assert server.stats.tcp_timeouts == 1


async def test_oversized_tcp_message_closes_the_connection(holder: ViewHolder) -> None:
    async with DnsServer(holder, port=0, max_message_size=512) as server:
        client = await TcpClient.connect(server.port)
        try:
            client.writer.write((4000).to_bytes(2, "big") + bytes(100))
            assert await client.closed_by_server()
        finally:
            await client.close()
        assert await udp_silence(server.port, query_wire(WEB) + bytes(600))


async def test_connection_limit(holder: ViewHolder) -> None:
    async with DnsServer(holder, port=0, max_tcp_connections=2) as server:
        clients = [await TcpClient.connect(server.port) for _ in range(3)]
        try:
            for client in clients[:2]:
                client.send(query_wire(WEB))
                assert dns.message.from_wire(await client.receive()).answer
            assert await clients[2].closed_by_server()
            assert server.stats.tcp_rejected == 1
        finally:
            for client in clients:
                await client.close()


async def test_stop_closes_open_connections(holder: ViewHolder) -> None:
    server = DnsServer(holder, port=0)
    await server.start()
    client = await TcpClient.connect(server.port)
    try:
        client.send(query_wire(WEB))
        await client.receive()
        await server.stop()
        assert await client.closed_by_server()
        assert server.open_tcp_connections == 0
    finally:
        await client.close()


async def test_view_swap_changes_answers(server: DnsServer, holder: ViewHolder) -> None:
    before = await udp(server, WEB, "A")
    assert len(before.answer[0]) == 2
    holder.view = swapped_view()
    after_udp = await udp(server, WEB, "A")
    after_tcp = await tcp(server, WEB, "A")
    for after in (after_udp, after_tcp):
        assert texts(after) == [f"{WEB} 30 IN A 10.7.7.7"]
    soa = await udp(server, ZONE, "SOA")
    assert soa.answer[0][0].serial == 2


async def test_response_packets_are_ignored(server: DnsServer) -> None:
    response = dns.message.make_response(dns.message.make_query(WEB, "A"))
    assert await udp_silence(server.port, response.to_wire())
    assert server.stats.dropped == 1


async def test_failing_view_provider_is_survived(holder: ViewHolder) -> None:
    calls = 0

    def flaky() -> ZoneView:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("catalog not loaded yet")
        return holder()

    async with DnsServer(flaky, port=0) as server:
        assert await udp_silence(server.port, query_wire(WEB))
        reply = await udp(server, WEB, "A")
        assert reply.answer
        assert server.stats.internal_errors == 1


async def test_concurrent_udp_clients(server: DnsServer) -> None:
    replies = await asyncio.gather(*(udp(server, WEB, "A") for _ in range(50)))
    assert all(len(r.answer[0]) == 2 for r in replies)


def keepalive_of(message: dns.message.Message) -> bytes | None:
    found = [o for o in message.options if o.otype == dns.edns.OptionType.KEEPALIVE]
    return found[0].to_wire() if found else None


async def test_tcp_keepalive_is_answered_with_the_idle_timeout(server: DnsServer) -> None:
    keepalive = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"")
    packet = query_wire(WEB, edns=0, options=[keepalive])
    client = await TcpClient.connect(server.port)
    try:
        client.send(packet)
        reply = dns.message.from_wire(await client.receive())
        assert keepalive_of(reply) == (20).to_bytes(2, "big")  # 2 s, in units of 100 ms
        assert len(reply.answer[0]) == 2
        # A query carrying a timeout breaks RFC 7828.
        bad = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"\x00\x10")
        client.send(query_wire(WEB, qid=9, edns=0, options=[bad]))
        reply = dns.message.from_wire(await client.receive())
        assert (reply.id, reply.rcode()) == (9, dns.rcode.FORMERR)
    finally:
        await client.close()
    over_udp = dns.message.from_wire(await udp_exchange(server.port, packet))
    assert keepalive_of(over_udp) is None  # ignored over UDP
    assert len(over_udp.answer[0]) == 2


async def test_pipelined_queries_are_answered_in_order_even_when_some_are_slow(
    server: DnsServer,
) -> None:
    client = await TcpClient.connect(server.port)
    try:
        # Fast-path, slow-path (an unknown option), malformed and NXDOMAIN queries, sent
        # in one write: the answers come back in the order of the queries.
        odd = dns.edns.GenericOption(65001, b"x")
        packets = [
            query_wire(WEB, qid=1),
            query_wire(API, qid=2, edns=0, options=[odd]),
            bytes.fromhex("0003 0100 0001 0000 0000 0000") + b"\x05abc",
            query_wire("nope." + ZONE, qid=4),
            query_wire(BIG, qid=5),
        ]
        client.writer.write(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
        replies = [dns.message.from_wire(await client.receive()) for _ in packets]
        assert [(r.id, r.rcode()) for r in replies] == [
            (1, dns.rcode.NOERROR),
            (2, dns.rcode.NOERROR),
            (3, dns.rcode.FORMERR),
            (4, dns.rcode.NXDOMAIN),
            (5, dns.rcode.NOERROR),
        ]
    finally:
        await client.close()


async def test_response_times_are_observed(holder: ViewHolder) -> None:
    seen: list[tuple[float, str]] = []

    def observe(seconds: float, *, transport: str) -> None:
        seen.append((seconds, transport))

    async with DnsServer(holder, port=0, observe=observe) as server:
        await udp(server, WEB, "A")
        await tcp(server, WEB, "A")
        await udp_silence(server.port, b"\x00")  # no response, nothing observed
    assert [transport for _, transport in seen] == ["udp", "tcp"]
    assert all(0 <= seconds < 1 for seconds, _ in seen)
