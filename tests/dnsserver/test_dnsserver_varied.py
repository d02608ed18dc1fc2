"""CNAMEs, geo and weighted answers, EDNS Client Subnet (in process, no sockets)."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Sequence
from types import MappingProxyType

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from mcobs.dnsserver import Responder
from mcobs.dnsserver.answers import respond_slow
from mcobs.zone import NameRecords, ZoneView
from tests.dnsserver.support import (
    ALIAS,
    ALIAS_EMPTY,
    ALIAS_GEO,
    ALIAS_NX,
    ALIAS_OUT,
    API,
    API_SRV,
    CHAIN,
    EUROPE_CLIENT,
    EUROPE_V6_CLIENT,
    GEO,
    LOOP,
    LOOP2,
    OUTSIDE,
    US_CLIENT,
    WEB,
    WEB_EU,
    WEB_SRV,
    WEIGHTED,
    WEIGHTED_SRV,
    ZONE,
    ecs_option,
    locator,
    query_wire,
    sample_view,
    varied_view,
)

EU_PEER = (EUROPE_CLIENT, 40000)
US_PEER = (US_CLIENT, 40000)
NOWHERE_PEER = ("203.0.113.9", 40000)


class Draws:
    """A draw source the test sets: every query draws `value`."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.value


def ask(
    responder: Responder,
    view: ZoneView,
    packet: bytes,
    *,
    udp: bool = True,
    peer: object = None,
) -> dns.message.Message:
    out = responder.respond(view, packet, udp=udp, peer=peer)
    assert out is not None
    return dns.message.from_wire(out)


def rdatas(message: dns.message.Message, section: str = "answer") -> list[tuple[str, str, str]]:
    return [
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rdata.to_text())
        for rrset in getattr(message, section)
        for rdata in rrset
    ]


def addresses(message: dns.message.Message) -> list[str]:
    return [rdata for _, rdtype, rdata in rdatas(message) if rdtype in ("A", "AAAA")]


def ecs_of(message: dns.message.Message) -> tuple[str, int, int] | None:
    found = [o for o in message.options if o.otype == dns.edns.OptionType.ECS]
    if not found:
        return None
    [ecs] = found
    assert isinstance(ecs, dns.edns.ECSOption)
    return ecs.address, ecs.srclen, ecs.scopelen


@pytest.fixture
def view() -> ZoneView:
    return varied_view()


# -- CNAME -------------------------------------------------------------------------


def test_cname_is_followed_inside_the_zone(view: ZoneView) -> None:
    reply = ask(Responder(), view, query_wire(ALIAS, "A"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert rdatas(reply) == [
        (ALIAS, "CNAME", WEB),
        (WEB, "A", "10.0.0.1"),
        (WEB, "A", "10.0.1.1"),
    ]
    assert reply.answer[0].ttl == 40
    assert reply.authority == []


def test_cname_chain(view: ZoneView) -> None:
    reply = ask(Responder(), view, query_wire(CHAIN, "AAAA"))
    assert rdatas(reply) == [
        (CHAIN, "CNAME", ALIAS),
        (ALIAS, "CNAME", WEB),
        (WEB, "AAAA", "fd00::1"),
    ]


@pytest.mark.parametrize("rdtype", ["CNAME", "ANY"])
def test_cname_and_any_get_the_cname_alone(view: ZoneView, rdtype: str) -> None:
    reply = ask(Responder(), view, query_wire(ALIAS, rdtype))
    assert rdatas(reply) == [(ALIAS, "CNAME", WEB)]
    assert reply.authority == []


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode"),
    [
        (ALIAS, "MX", dns.rcode.NOERROR),  # the target has no MX: NODATA
        (ALIAS_EMPTY, "A", dns.rcode.NOERROR),  # the target exists without data
        (ALIAS_NX, "A", dns.rcode.NXDOMAIN),  # the target does not exist (RFC 6604)
    ],
)
def test_cname_to_nothing_carries_the_soa(
    view: ZoneView, name: str, rdtype: str, rcode: dns.rcode.Rcode
) -> None:
    reply = ask(Responder(), view, query_wire(name, rdtype))
    assert reply.rcode() == rcode
    assert [r[1] for r in rdatas(reply)] == ["CNAME"]
    assert [(r.name.to_text(), r.rdtype, r.ttl) for r in reply.authority] == [
        (ZONE, dns.rdatatype.SOA, 30)
    ]


def test_cname_outside_the_zone_is_left_to_the_resolver(view: ZoneView) -> None:
    reply = ask(Responder(), view, query_wire(ALIAS_OUT, "A"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert rdatas(reply) == [(ALIAS_OUT, "CNAME", OUTSIDE)]
    assert reply.authority == []


def test_cname_loop_ends(view: ZoneView) -> None:
    reply = ask(Responder(), view, query_wire(LOOP, "A"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert rdatas(reply) == [(LOOP, "CNAME", LOOP2), (LOOP2, "CNAME", LOOP)]


def test_cname_owner_keeps_the_question_case(view: ZoneView) -> None:
    name = ALIAS.upper()
    reply = ask(Responder(), view, query_wire(name, "A", edns=0))
    assert reply.answer[0].name.to_text() == name
    assert reply.answer[1].name == dns.name.from_text(WEB)  # compressed onto the question


# -- weighted ------------------------------------------------------------------------


@pytest.mark.parametrize(("draw", "address"), [(0, "10.3.0.1"), (1, "10.3.0.1"), (2, "10.3.0.2")])
def test_weighted_name_answers_the_drawn_variant(view: ZoneView, draw: int, address: str) -> None:
    reply = ask(Responder(draw=Draws(draw)), view, query_wire(WEIGHTED))
    assert addresses(reply) == [address]


def test_weighted_shares_follow_the_variants(view: ZoneView) -> None:
    responder = Responder(draw=random.Random(7))
    answers = [addresses(ask(responder, view, query_wire(WEIGHTED)))[0] for _ in range(3000)]
    light = answers.count("10.3.0.2") / len(answers)
    assert 0.29 < light < 0.38  # one variant in three
    assert responder.stats.cache_misses == 3  # one render per variant, then cached


def test_srv_target_addresses_follow_the_draw(view: ZoneView) -> None:
    for draw, address in [(0, "10.3.0.1"), (2, "10.3.0.2")]:
        reply = ask(Responder(draw=Draws(draw)), view, query_wire(WEIGHTED_SRV, "SRV"))
        assert rdatas(reply, "additional") == [(WEIGHTED, "A", address)]


def test_names_that_do_not_vary_draw_nothing(view: ZoneView) -> None:
    draws = Draws()
    responder = Responder(draw=draws, locate=locator())
    for name in (WEB, API, ALIAS, "nope." + ZONE):
        ask(responder, view, query_wire(name), peer=EU_PEER)
    assert draws.calls == 0


# -- geo -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "draw", "address"),
    [
        (EU_PEER, 1, "10.1.0.1"),
        (US_PEER, 0, "10.2.0.1"),
        ((EUROPE_V6_CLIENT, 53, 0, 0), 1, "10.1.0.1"),
        (("::ffff:" + US_CLIENT, 53, 0, 0), 0, "10.2.0.1"),  # IPv4-mapped
        (NOWHERE_PEER, 0, "10.1.0.1"),  # no region: any variant
        (NOWHERE_PEER, 1, "10.2.0.1"),
    ],
)
def test_geo_name_by_source_address(
    view: ZoneView, peer: tuple[object, ...], draw: int, address: str
) -> None:
    responder = Responder(locate=locator(), draw=Draws(draw))
    assert addresses(ask(responder, view, query_wire(GEO), peer=peer)) == [address]


def test_geo_name_by_client_subnet_with_its_scope(view: ZoneView) -> None:
    responder = Responder(locate=locator())
    us = ask(responder, view, query_wire(GEO, edns=0, options=[ecs_option("198.51.100.0", 24)]))
    assert addresses(us) == ["10.2.0.1"]
    assert ecs_of(us) == ("198.51.100.0", 24, 24)
    eu6 = ask(
        responder,
        view,
        query_wire(GEO, "AAAA", edns=0, options=[ecs_option("2001:db8:e::", 56)]),
        peer=US_PEER,  # the subnet wins over the resolver's address
    )
    assert addresses(eu6) == ["fd01::1"]
    assert ecs_of(eu6) == ("2001:db8:e::", 56, 56)


def test_cname_to_a_geo_name_is_geo(view: ZoneView) -> None:
    responder = Responder(locate=locator())
    reply = ask(
        responder, view, query_wire(ALIAS_GEO, edns=0, options=[ecs_option("192.0.2.0", 24)])
    )
    assert rdatas(reply) == [(ALIAS_GEO, "CNAME", GEO), (GEO, "A", "10.1.0.1")]
    assert ecs_of(reply) == ("192.0.2.0", 24, 24)


@pytest.mark.parametrize("name", [WEB, WEIGHTED, "nope." + ZONE, "example.org."])
def test_client_subnet_scope_is_zero_when_the_answer_is_not_geo(view: ZoneView, name: str) -> None:
    reply = ask(
        Responder(locate=locator()),
        view,
        query_wire(name, edns=0, options=[ecs_option("198.51.100.0", 24)]),
    )
    assert ecs_of(reply) == ("198.51.100.0", 24, 0)


def test_client_subnet_source_zero_locates_by_the_source_address(view: ZoneView) -> None:
    reply = ask(
        Responder(locate=locator()),
        view,
        query_wire(GEO, edns=0, options=[ecs_option("0.0.0.0", 0)]),
        peer=US_PEER,
    )
    assert addresses(reply) == ["10.2.0.1"]
    assert ecs_of(reply) == ("0.0.0.0", 0, 0)


def test_no_client_subnet_in_the_answer_unless_asked(view: ZoneView) -> None:
    reply = ask(Responder(locate=locator()), view, query_wire(GEO, edns=0), peer=EU_PEER)
    assert reply.edns == 0
    assert reply.options == ()


def test_cache_never_gives_one_clients_variant_to_another(view: ZoneView) -> None:
    responder = Responder(locate=locator())
    subnets = {"192.0.2.0": "10.1.0.1", "198.51.100.0": "10.2.0.1"}
    for _, (subnet, address) in itertools.product(range(5), subnets.items()):
        ecs = [ecs_option(subnet, 24)]
        assert addresses(ask(responder, view, query_wire(GEO, edns=0, options=ecs))) == [address]
        by_peer = EU_PEER if address == "10.1.0.1" else US_PEER
        assert addresses(ask(responder, view, query_wire(GEO), peer=by_peer)) == [address]
    assert responder.stats.fast_path == 20
    assert responder.stats.cache_misses == 4  # (with ECS, without) x (europe, us)


def test_failing_locator_means_no_region(view: ZoneView) -> None:
    def broken(address: object) -> str | None:
        raise RuntimeError("geo database gone")

    responder = Responder(locate=broken, draw=Draws(1))
    assert addresses(ask(responder, view, query_wire(GEO), peer=EU_PEER)) == ["10.2.0.1"]
    assert responder.stats.internal_errors == 0


# -- malformed client subnet -------------------------------------------------------


def ecs_raw(family: int, source: int, scope: int, address: bytes) -> dns.edns.Option:
    data = family.to_bytes(2, "big") + bytes((source, scope)) + address
    return dns.edns.GenericOption(dns.edns.OptionType.ECS, data)


@pytest.mark.parametrize(
    "options",
    [
        [ecs_raw(3, 8, 0, b"\x01")],  # unknown family
        [ecs_raw(0, 0, 0, b"")],  # family 0 is reserved
        [ecs_raw(1, 33, 0, bytes(5))],  # longer than IPv4
        [ecs_raw(2, 129, 0, bytes(17))],  # longer than IPv6
        [ecs_raw(1, 24, 24, b"\xc0\x00\x02")],  # a scope in a query
        [ecs_raw(1, 24, 0, b"\xc0\x00")],  # too few address bytes
        [ecs_raw(1, 24, 0, b"\xc0\x00\x02\x00")],  # too many address bytes
        [ecs_raw(1, 20, 0, b"\xc0\x00\x0f")],  # bits set beyond the prefix
        [dns.edns.GenericOption(dns.edns.OptionType.ECS, b"\x00\x01")],  # too short
        [ecs_option("192.0.2.0", 24), ecs_option("198.51.100.0", 24)],  # two of them
    ],
)
@pytest.mark.parametrize("fast", [True, False])
def test_malformed_client_subnet_is_formerr(
    view: ZoneView, options: Sequence[dns.edns.Option], fast: bool
) -> None:
    packet = query_wire(GEO, qid=0xECEC, edns=0, options=options)
    responder = Responder(fast_path=fast, locate=locator())
    reply = ask(responder, view, packet)
    assert (reply.id, reply.rcode()) == (0xECEC, dns.rcode.FORMERR)
    assert reply.answer == []
    assert responder.stats.malformed == 1


# -- fast path == full path ------------------------------------------------------

TYPES = ["A", "AAAA", "SRV", "CNAME", "ANY", "MX", "NS", "SOA"]
ECS_CHOICES: list[list[dns.edns.Option] | None] = [
    None,  # no EDNS at all
    [],
    [ecs_option("192.0.2.0", 24)],
    [ecs_option("198.51.100.0", 24), dns.edns.CookieOption(b"client!!", b"")],
    [ecs_option("2001:db8:e::", 56)],
    [ecs_option("0.0.0.0", 0)],
    [ecs_option("198.51.96.0", 20)],
]


def all_names(view: ZoneView) -> list[str]:
    return sorted({*view.names, *view.ancestors, view.origin, "nope." + ZONE, "example.org."})


def test_fast_path_matches_full_path_with_cname_client_subnet_and_varied_names(
    view: ZoneView,
) -> None:
    draws = Draws()
    fast = Responder(locate=locator(), draw=draws)
    full = Responder(locate=locator(), draw=draws, fast_path=False)
    packets = 0
    clients = [(EU_PEER, 1), (US_PEER, 0), (NOWHERE_PEER, 1), (NOWHERE_PEER, 2)]
    for name, rdtype, options, (peer, draw) in itertools.product(
        all_names(view), TYPES, ECS_CHOICES, clients
    ):
        draws.value = draw
        spelled = name.upper() if packets % 2 else name
        edns = None if options is None else 0
        packet = query_wire(
            spelled,
            rdtype,
            qid=packets & 0xFFFF,
            edns=edns,
            options=options or [],
            dnssec_ok=packets % 3 == 0,
        )
        expected = full.respond(view, packet, udp=True, peer=peer)
        for _ in range(2):  # once filling the cache, once from it
            assert fast.respond(view, packet, udp=True, peer=peer) == expected, (
                name,
                rdtype,
                options,
                peer,
                draw,
            )
        packets += 1
    assert fast.stats.slow_path == 0
    assert fast.stats.internal_errors == full.stats.internal_errors == 0
    assert fast.stats.fast_path == 2 * packets


def test_respond_slow_agrees_with_the_responder(view: ZoneView) -> None:
    packet = query_wire(GEO, edns=0, options=[ecs_option("198.51.100.0", 24)])
    slow = respond_slow(view, packet, udp=True, locate=lambda ecs: "us" if ecs else None)
    assert slow.wire == Responder(locate=locator()).respond(view, packet, udp=True)


# -- the cache across views ------------------------------------------------------------


def test_new_view_costs_the_cache_only_the_names_that_changed() -> None:
    responder = Responder()
    before = sample_view(serial=1)
    positive = [(WEB, "A"), (API, "AAAA"), (WEB_SRV, "SRV"), (API_SRV, "SRV"), (ZONE, "NS")]
    negative = [("nope." + ZONE, "A"), (WEB, "MX")]
    for name, rdtype in positive + negative:
        ask(responder, before, query_wire(name, rdtype))
    assert responder.stats.cache_misses == 7

    # A new catalog version: web's addresses changed, so did the SOA serial.
    after = sample_view(serial=2, web_a=("10.7.7.7",))
    replies = {q: ask(responder, after, query_wire(*q)) for q in positive + negative}
    # Re-rendered: web A, and the two negative answers (they carry the new SOA).
    assert responder.stats.cache_misses == 7 + 3
    assert addresses(replies[(WEB, "A")]) == ["10.7.7.7"]
    assert replies[("nope." + ZONE, "A")].authority[0][0].serial == 2

    # A change of an SRV target's records reaches the SRV answer that lists them.
    names = dict(after.names)
    names[WEB_EU] = NameRecords(ttl=30, a=("10.8.8.8",))
    moved = dataclasses.replace(after, names=MappingProxyType(names))
    srv = ask(responder, moved, query_wire(WEB_SRV, "SRV"))
    assert (WEB_EU, "A", "10.8.8.8") in rdatas(srv, "additional")
    ask(responder, moved, query_wire(API, "AAAA"))
    assert responder.stats.cache_misses == 7 + 3 + 1


def test_servfail_is_never_cached() -> None:
    good = sample_view()
    names = dict(good.names)
    names[WEB] = NameRecords(ttl=30, a=("not-an-address",))
    broken = dataclasses.replace(good, names=MappingProxyType(names))
    responder = Responder()
    for _ in range(2):
        assert ask(responder, broken, query_wire(WEB)).rcode() == dns.rcode.SERVFAIL
    assert responder.stats.internal_errors == 2
    assert responder.cached == 0
    assert ask(responder, good, query_wire(WEB)).rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize("fast", [True, False])
def test_names_failing_on_purpose_get_servfail_every_time(fast: bool) -> None:
    base = varied_view()
    names = {k: v for k, v in base.names.items() if k != WEB}
    view = dataclasses.replace(
        base,
        names=MappingProxyType(names),
        ancestors=base.ancestors | {WEB},
        servfail=frozenset({WEB}),
    )
    responder = Responder(fast_path=fast)
    for name in (WEB, ALIAS, CHAIN):
        for _ in range(2):
            reply = ask(responder, view, query_wire(name, qid=77, edns=0))
            assert (reply.id, reply.rcode()) == (77, dns.rcode.SERVFAIL)
            assert not reply.flags & dns.flags.AA or name != WEB
            assert reply.answer == []
    assert responder.cached == 0
    assert responder.stats.internal_errors == 0
    # The names around it answer as usual.
    assert ask(responder, view, query_wire(API)).rcode() == dns.rcode.NOERROR
    assert ask(responder, view, query_wire("x." + WEB)).rcode() == dns.rcode.NXDOMAIN
