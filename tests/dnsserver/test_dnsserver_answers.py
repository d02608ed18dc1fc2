"""What a resolver sees from the answer function (in process, no sockets)."""

from __future__ import annotations

import itertools
import logging
from types import MappingProxyType

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from mcobs.dnsserver import Responder
from mcobs.dnsserver.answers import respond_slow
from mcobs.dnsserver.throttle import Throttle
from mcobs.zone import NameRecords, ZoneView
from tests.dnsserver.support import (
    API,
    API_SRV,
    BIG,
    BIG_ADDRESSES,
    DRAINED,
    NS1,
    WEB,
    WEB_EU,
    WEB_SRV,
    WEB_US,
    ZONE,
    query_wire,
    sample_view,
    swapped_view,
)


def ask(
    responder: Responder, view: ZoneView, packet: bytes, *, udp: bool = True
) -> dns.message.Message:
    out = responder.respond(view, packet, udp=udp)
    assert out is not None
    return dns.message.from_wire(out)


def rdatas(message: dns.message.Message, section: str = "answer") -> list[tuple[str, str, str]]:
    return [
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rdata.to_text())
        for rrset in getattr(message, section)
        for rdata in rrset
    ]


def test_a_records_in_view_order_with_ttl(responder: Responder, view: ZoneView) -> None:
    reply = ask(responder, view, query_wire(WEB, "A"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert not reply.flags & dns.flags.RA
    assert rdatas(reply) == [(WEB, "A", "10.0.0.1"), (WEB, "A", "10.0.1.1")]
    assert reply.answer[0].ttl == 30
    assert reply.id == 0x1234


def test_aaaa(responder: Responder, view: ZoneView) -> None:
    reply = ask(responder, view, query_wire(API, "AAAA"))
    assert rdatas(reply) == [(API, "AAAA", "fd00::2")]
    assert reply.answer[0].ttl == 60


def test_srv_has_target_addresses_in_additional(responder: Responder, view: ZoneView) -> None:
    reply = ask(responder, view, query_wire(WEB_SRV, "SRV", edns=0))
    assert rdatas(reply) == [
        (WEB_SRV, "SRV", f"10 60 8080 {WEB_EU}"),
        (WEB_SRV, "SRV", f"10 40 8080 {WEB_US}"),
    ]
    assert rdatas(reply, "additional") == [
        (WEB_EU, "A", "10.0.0.1"),
        (WEB_EU, "AAAA", "fd00::1"),
        (WEB_US, "A", "10.0.1.1"),
    ]


def test_soa_at_apex(responder: Responder, view: ZoneView) -> None:
    reply = ask(responder, view, query_wire(ZONE, "SOA"))
    assert rdatas(reply) == [(ZONE, "SOA", f"{NS1} hostmaster.{ZONE} 1 3600 600 86400 30")]
    assert reply.answer[0].ttl == 300


def test_ns_at_apex_with_glue(responder: Responder, view: ZoneView) -> None:
    reply = ask(responder, view, query_wire(ZONE, "NS"))
    assert rdatas(reply) == [(ZONE, "NS", NS1)]
    assert rdatas(reply, "additional") == [(NS1, "A", "127.0.0.1")]


def test_ns_glue_from_nameserver_when_not_in_names(responder: Responder) -> None:
    base = sample_view()
    names = {k: v for k, v in base.names.items() if k != NS1}
    view = ZoneView(base.origin, base.soa, base.nameservers, MappingProxyType(names))
    reply = ask(responder, view, query_wire(ZONE, "NS"))
    assert rdatas(reply, "additional") == [(NS1, "A", "127.0.0.1")]


def assert_negative(reply: dns.message.Message, rcode: dns.rcode.Rcode) -> None:
    assert reply.rcode() == rcode
    assert reply.flags & dns.flags.AA
    assert reply.answer == []
    [soa] = reply.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.name.to_text() == ZONE
    assert soa.ttl == 30  # min(SOA TTL 300, minimum 30), RFC 2308


@pytest.mark.parametrize(
    "name", ["nope.default." + ZONE, "x." + WEB, "web.other." + ZONE, "deep.a.b.c." + ZONE]
)
def test_nxdomain_for_unknown_names(responder: Responder, view: ZoneView, name: str) -> None:
    assert_negative(ask(responder, view, query_wire(name, "A")), dns.rcode.NXDOMAIN)


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        (WEB, "MX"),
        (WEB, "SRV"),
        (WEB_SRV, "A"),
        (WEB_US, "AAAA"),
        ("default." + ZONE, "A"),  # empty non-terminal
        ("_tcp." + WEB, "SRV"),  # empty non-terminal
        (DRAINED, "A"),  # a name without data
        (ZONE, "A"),
        (WEB, "SOA"),
        (WEB, "NS"),
    ],
)
def test_nodata_for_existing_names(
    responder: Responder, view: ZoneView, name: str, rdtype: str
) -> None:
    assert_negative(ask(responder, view, query_wire(name, rdtype)), dns.rcode.NOERROR)


@pytest.mark.parametrize("name", ["example.org.", "example.com.", "other.example.com.", "."])
def test_refused_outside_the_zone(responder: Responder, view: ZoneView, name: str) -> None:
    reply = ask(responder, view, query_wire(name, "A"))
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert (reply.answer, reply.authority, reply.additional) == ([], [], [])


def test_refused_for_zone_transfer_and_other_classes(responder: Responder, view: ZoneView) -> None:
    assert ask(responder, view, query_wire(ZONE, "AXFR")).rcode() == dns.rcode.REFUSED
    chaos = dns.message.make_query(WEB, "A", rdclass=dns.rdataclass.CH)
    assert ask(responder, view, chaos.to_wire()).rcode() == dns.rcode.REFUSED


def test_any_is_minimal(responder: Responder, view: ZoneView) -> None:
    web = ask(responder, view, query_wire(WEB, "ANY"))
    assert [rrset.rdtype for rrset in web.answer] == [dns.rdatatype.A]
    apex = ask(responder, view, query_wire(ZONE, "ANY"))
    assert [rrset.rdtype for rrset in apex.answer] == [dns.rdatatype.SOA]
    empty = ask(responder, view, query_wire("default." + ZONE, "ANY"))
    assert_negative(empty, dns.rcode.NOERROR)


@pytest.mark.parametrize("fast", [True, False])
def test_case_of_the_question_is_kept(view: ZoneView, fast: bool) -> None:
    responder = Responder(fast_path=fast)
    name = "WeB.DeFaUlT.gLoBaL.ExAmPlE.cOm."
    reply = ask(responder, view, query_wire(name, "A", edns=0))
    assert reply.question[0].name.to_text() == name
    assert {rrset.name.to_text() for rrset in reply.answer} == {name}
    assert len(reply.answer[0]) == 2


def test_edns_answered_with_our_payload(responder: Responder, view: ZoneView) -> None:
    with_edns = ask(responder, view, query_wire(WEB, edns=0, payload=4096))
    assert (with_edns.edns, with_edns.payload) == (0, 1232)
    without = ask(responder, view, query_wire(WEB))
    assert without.edns == -1


def test_unknown_edns_options_are_ignored(responder: Responder, view: ZoneView) -> None:
    query = dns.message.make_query(
        WEB,
        "A",
        use_edns=0,
        options=[
            dns.edns.GenericOption(65001, b"hello"),
            dns.edns.CookieOption(b"12345678", b""),
        ],
    )
    reply = ask(responder, view, query.to_wire())
    assert reply.rcode() == dns.rcode.NOERROR
    assert len(reply.answer[0]) == 2
    assert reply.options == ()


def test_badvers_for_edns_version_above_zero(responder: Responder, view: ZoneView) -> None:
    reply = ask(responder, view, query_wire(WEB, edns=1))
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0
    assert reply.answer == []


def test_formerr_for_two_questions(responder: Responder, view: ZoneView) -> None:
    query = dns.message.make_query(WEB, "A")
    query.question.append(dns.rrset.RRset(dns.name.from_text(API), 1, 1))
    query.id = 777
    reply = ask(responder, view, query.to_wire())
    assert (reply.id, reply.rcode()) == (777, dns.rcode.FORMERR)


def test_formerr_for_no_question(responder: Responder, view: ZoneView) -> None:
    packet = bytes.fromhex("abcd0100") + bytes(8)
    reply = ask(responder, view, packet)
    assert (reply.id, reply.rcode()) == (0xABCD, dns.rcode.FORMERR)


@pytest.mark.parametrize(
    "packet",
    [
        bytes.fromhex("beef01000001000000000000") + b"\x03web\xff",  # label runs off the end
        bytes.fromhex("beef01000001000000000000") + b"\xc0\x0c\x00\x01\x00\x01",  # pointer loop
        query_wire(WEB, qid=0xBEEF) + b"trailing junk",
        query_wire(WEB, qid=0xBEEF)[:-2],
    ],
)
def test_formerr_for_garbage_keeps_id(responder: Responder, view: ZoneView, packet: bytes) -> None:
    reply = ask(responder, view, packet)
    assert (reply.id, reply.rcode()) == (0xBEEF, dns.rcode.FORMERR)
    assert responder.stats.malformed == 1


def test_unreadable_header_and_responses_are_dropped(responder: Responder, view: ZoneView) -> None:
    assert responder.respond(view, b"\x12\x34\x01", udp=True) is None
    response = dns.message.make_response(dns.message.make_query(WEB, "A"))
    assert responder.respond(view, response.to_wire(), udp=True) is None
    assert responder.stats.dropped == 2


@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS])
def test_notimp_for_other_opcodes(
    responder: Responder, view: ZoneView, opcode: dns.opcode.Opcode
) -> None:
    query = dns.message.make_query(ZONE, "SOA")
    query.set_opcode(opcode)
    reply = ask(responder, view, query.to_wire())
    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.opcode() == opcode
    assert reply.id == query.id


def test_large_answer_truncated_over_udp_and_full_over_tcp(
    responder: Responder, view: ZoneView
) -> None:
    for packet in (query_wire(BIG), query_wire(BIG, edns=0, payload=4096)):
        truncated = ask(responder, view, packet)
        assert truncated.flags & dns.flags.TC
        assert truncated.answer == []
        assert truncated.question[0].name.to_text() == BIG
        full = ask(responder, view, packet, udp=False)
        assert not full.flags & dns.flags.TC
        assert [rdata.to_text() for rdata in full.answer[0]] == list(BIG_ADDRESSES)
    assert responder.stats.truncated == 2


def test_udp_size_follows_the_client_up_to_our_limit(view: ZoneView) -> None:
    roomy = Responder(max_udp_payload=4096)
    assert len(ask(roomy, view, query_wire(BIG, edns=0, payload=4096)).answer[0]) == 100
    assert ask(roomy, view, query_wire(BIG, edns=0, payload=1400)).flags & dns.flags.TC
    # Below 512 counts as 512: a small answer still fits.
    tiny = ask(roomy, view, query_wire(WEB_SRV, "SRV", edns=0, payload=100))
    assert not tiny.flags & dns.flags.TC


def test_additional_records_dropped_before_truncating(view: ZoneView) -> None:
    targets = tuple(f"t{i}.{WEB}" for i in range(7))
    names = dict(view.names)
    names[API_SRV] = NameRecords(
        ttl=30,
        srv=tuple(
            type(view.names[WEB_SRV].srv[0])(priority=1, weight=1, port=80, target=target)
            for target in targets
        ),
    )
    for target in targets:
        names[target] = NameRecords(ttl=30, aaaa=("fd00::1", "fd00::2"))
    bigger = ZoneView(view.origin, view.soa, view.nameservers, MappingProxyType(names))
    reply = ask(Responder(), bigger, query_wire(API_SRV, "SRV"))
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 7
    assert 0 < len(reply.additional) < 7


def test_view_swap_changes_answers(responder: Responder, view: ZoneView) -> None:
    assert rdatas(ask(responder, view, query_wire(WEB)))[0][2] == "10.0.0.1"
    assert rdatas(ask(responder, swapped_view(), query_wire(WEB))) == [(WEB, "A", "10.7.7.7")]


def test_cache_is_bounded(view: ZoneView) -> None:
    responder = Responder(cache_entries=5)
    for i in range(20):
        ask(responder, view, query_wire(f"n{i}.{ZONE}"))
        assert responder.cached <= 5


def test_bad_view_data_gives_servfail_not_a_crash(responder: Responder, view: ZoneView) -> None:
    names = dict(view.names)
    names[WEB] = NameRecords(ttl=30, a=("not-an-address",))
    broken = ZoneView(view.origin, view.soa, view.nameservers, MappingProxyType(names))
    reply = ask(responder, broken, query_wire(WEB, qid=4321))
    assert (reply.id, reply.rcode()) == (4321, dns.rcode.SERVFAIL)
    assert responder.stats.internal_errors == 1


def test_stats_count_queries_and_rcodes(responder: Responder, view: ZoneView) -> None:
    ask(responder, view, query_wire(WEB, "A"))
    ask(responder, view, query_wire(WEB, "A", edns=0))
    ask(responder, view, query_wire("nope." + ZONE, "AAAA"))
    ask(responder, view, query_wire("example.org.", "A"))
    ask(responder, view, bytes.fromhex("000101000001000000000000") + b"\x07garbage")
    snapshot = responder.stats.snapshot()
    assert dict(snapshot.queries) == {"A": 3, "AAAA": 1}
    assert dict(snapshot.responses) == {"NOERROR": 2, "NXDOMAIN": 1, "REFUSED": 1, "FORMERR": 1}
    assert snapshot.malformed == 1
    assert snapshot.fast_path == 4


# -- fast path == slow path -----------------------------------------------------

TYPES = ["A", "AAAA", "SRV", "SOA", "NS", "ANY", "MX", "TXT", "HTTPS", "TYPE65280"]
ODD_TYPES = ["OPT", "TSIG", "TKEY", "AXFR", "IXFR", "MAILB"]


def sample_names(view: ZoneView) -> list[str]:
    return sorted(
        {*view.names, *view.ancestors, view.origin}
        | {"nope." + ZONE, "x." + WEB, "example.org.", "com.", "."}
    )


def spellings(name: str) -> list[str]:
    return [name, "".join(c.upper() if i % 2 else c for i, c in enumerate(name))]


COOKIES: list[list[dns.edns.Option]] = [
    [],
    [dns.edns.CookieOption(b"client!!", b"")],
    [dns.edns.CookieOption(b"client!!", b"server-cookie-16")],
]


def test_fast_path_matches_slow_path_byte_for_byte(view: ZoneView) -> None:
    fast = Responder()
    packets = 0
    for name, rdtype, (edns, options), udp, flags in itertools.product(
        sample_names(view),
        TYPES,
        [(None, [])] + [(0, cookie) for cookie in COOKIES],
        [True, False],
        [dns.flags.RD, 0, dns.flags.CD | dns.flags.AD],
    ):
        for spelled in spellings(name):
            packet = query_wire(
                spelled, rdtype, qid=packets & 0xFFFF, edns=edns, flags=flags, options=options
            )
            expected = respond_slow(view, packet, udp=udp).wire
            # Twice: once filling the cache, once from it.
            assert fast.respond(view, packet, udp=udp) == expected, (spelled, rdtype, edns, udp)
            assert fast.respond(view, packet, udp=udp) == expected, (spelled, rdtype, edns, udp)
            packets += 1
    assert fast.stats.fast_path == 2 * packets
    assert fast.stats.slow_path == 0


@pytest.mark.parametrize("rdtype", ODD_TYPES)
def test_fast_path_matches_slow_path_for_meta_types(view: ZoneView, rdtype: str) -> None:
    for name in (WEB, ZONE, "example.org."):
        for edns in (None, 0):
            packet = query_wire(name, rdtype, edns=edns)
            expected = respond_slow(view, packet, udp=True).wire
            assert Responder().respond(view, packet, udp=True) == expected


def test_bad_packets_are_logged_at_debug_rate_limited(
    view: ZoneView, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    responder = Responder(log_throttle=Throttle(rate=1.0, burst=3, clock=lambda: now[0]))
    garbage = bytes.fromhex("000101000001000000000000") + b"\x07garbage"
    with caplog.at_level(logging.DEBUG, logger="mcobs.dnsserver"):
        for _ in range(20):
            responder.respond(view, garbage, udp=True, peer=("192.0.2.1", 5353))
        now[0] = 2.0
        for _ in range(20):
            responder.respond(view, garbage, udp=True)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(messages) == 3 + 2
    assert "192.0.2.1" in messages[0]
    assert responder.stats.malformed == 40


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", [WEB, "nope." + ZONE, "example.org."])
def test_the_do_bit_is_copied(view: ZoneView, fast: bool, name: str) -> None:
    responder = Responder(fast_path=fast)
    query = dns.message.make_query(name, "A", use_edns=0, want_dnssec=True)
    with_do = ask(responder, view, query.to_wire())
    assert with_do.ednsflags & dns.flags.DO  # RFC 3225 3
    without = ask(responder, view, query_wire(name, edns=0))  # same question, no DO
    assert not without.ednsflags & dns.flags.DO
    badvers = dns.message.make_query(name, "A", use_edns=1, want_dnssec=True)
    reply = ask(responder, view, badvers.to_wire())
    assert (reply.rcode(), bool(reply.ednsflags & dns.flags.DO)) == (dns.rcode.BADVERS, True)
