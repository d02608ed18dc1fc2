"""The full answer path: a ZoneView and one query in, one response out (dnspython).

`answer` decides the content of a response (pure: no I/O, no clock); `render` turns it
into wire format within a size limit; `respond_slow` does both for a raw packet,
including every error case. The fast path in `responder` caches what this produces.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

from mcobs.dnsserver import wire as w
from mcobs.dnsserver.wire import Ecs
from mcobs.zone import NameRecords, VariedRecords, ZoneView

EDNS_PAYLOAD = 1232
"""What we advertise, and the most we send over UDP (DNS flag day 2020)."""
MIN_UDP_PAYLOAD = 512
MAX_TCP_MESSAGE = 65535

IN = dns.rdataclass.IN
A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
SRV = dns.rdatatype.SRV
SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS
CNAME = dns.rdatatype.CNAME
ANY = dns.rdatatype.ANY

MAX_CNAME_CHAIN = 8
"""CNAMEs followed inside the zone for one answer (loops stop earlier)."""

_ZONE_TRANSFERS = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
_NOT_A_QUESTION = frozenset({dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY})
_OBSOLETE_META = frozenset({dns.rdatatype.MAILA, dns.rdatatype.MAILB})

# dnspython's rdata constructors are untyped; call them through Any.
_A_CLASS: Any = dns.rdtypes.IN.A.A
_AAAA_CLASS: Any = dns.rdtypes.IN.AAAA.AAAA
_SRV_CLASS: Any = dns.rdtypes.IN.SRV.SRV
_SOA_CLASS: Any = dns.rdtypes.ANY.SOA.SOA
_NS_CLASS: Any = dns.rdtypes.ANY.NS.NS
_CNAME_CLASS: Any = dns.rdtypes.ANY.CNAME.CNAME

Locate = Callable[[Ecs | None], str | None]
"""The client's region from its ECS option (None: the query had none); None: unknown."""
Draw = Callable[[], int]
"""A random integer >= 0, one per query that reaches a varied name."""


def _no_region(ecs: Ecs | None) -> None:
    return None


def _zero() -> int:
    return 0


class Lookup:
    """The records one query sees: `ZoneView.lookup`, with varied names picked.

    A varied name is picked with the client's region (asked of `locate` at most once,
    and only when a varied name has per-region variants) and one random draw per
    query (likewise at most once). Every name read is remembered in `read`, varied
    ones also in `varied`, so a cache knows what its response depends on.
    """

    __slots__ = ("_draw", "_ecs", "_locate", "_region", "_value", "geo", "read", "varied", "view")

    def __init__(
        self,
        view: ZoneView,
        *,
        locate: Locate = _no_region,
        draw: Draw = _zero,
        ecs: Ecs | None = None,
    ) -> None:
        self.view = view
        self._locate = locate
        self._draw = draw
        self._ecs = ecs
        self._region: tuple[str | None] | None = None
        self._value: int | None = None
        self.read: dict[str, None] = {}
        self.varied: dict[str, VariedRecords] = {}
        self.geo = False
        """A name read depends on where the client is (ECS scope = source prefix)."""

    def region(self) -> str | None:
        if self._region is None:
            self._region = (self._locate(self._ecs),)
        return self._region[0]

    def draw(self) -> int:
        if self._value is None:
            self._value = self._draw()
        return self._value

    def failing(self, name: str) -> bool:
        """Whether `name` is to be answered SERVFAIL (`ZoneView.servfail`)."""
        self.read[name] = None
        return name in self.view.servfail

    def get(self, name: str) -> NameRecords | None:
        """Records at `name` (a variant for varied names), empty for empty non-terminals."""
        self.read[name] = None
        varied = self.view.varied.get(name)
        if varied is None:
            return self.view.lookup(name)
        self.varied[name] = varied
        self.geo = self.geo or varied.geo
        region = self.region() if varied.by_region else None
        return self.view.pick(name, region, self.draw())


def variant_position(
    varied: VariedRecords, region: str | None, draw: int
) -> tuple[str | None, int]:
    """Which variant `ZoneView.pick` chooses, as (region key or None, index)."""
    if region and region in varied.by_region:
        return region, draw % len(varied.by_region[region])
    return None, draw % len(varied.variants)


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of one packet."""

    wire: bytes | None
    """The response, or None to send nothing."""
    rcode: int
    qtype: int | None = None
    truncated: bool = False
    problem: str | None = None
    """Why the packet was bad (for the debug log and the malformed counter)."""


@functools.lru_cache(maxsize=4096)
def to_name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def udp_limit(payload: int, max_udp_payload: int = EDNS_PAYLOAD) -> int:
    """Largest UDP response for a requestor payload (-1: no EDNS): RFC 6891 6.2.5."""
    if payload < 0:
        return MIN_UDP_PAYLOAD
    return max(MIN_UDP_PAYLOAD, min(payload, max_udp_payload))


def answer(
    view: ZoneView,
    qname: dns.name.Name,
    qtype: int,
    qclass: int = IN,
    *,
    edns: bool,
    dnssec_ok: bool = False,
    query_id: int = 0,
    query_flags: int = 0,
    lookup: Lookup | None = None,
    ecs: Ecs | None = None,
    keepalive: int | None = None,
) -> dns.message.Message:
    """The response to one question, owner names spelled as in `qname`.

    `lookup` reads the records (default: no region, draw 0). With EDNS, an `ecs` is
    echoed with SCOPE PREFIX-LENGTH = its source prefix when the answer depends on
    where the client is, else 0 (RFC 7871 7.2.1); a `keepalive` (in units of 100 ms)
    is sent as edns-tcp-keepalive (RFC 7828). The DO bit is copied (RFC 3225 3); we do
    not sign, so it changes nothing else.
    """
    if lookup is None:
        lookup = Lookup(view, ecs=ecs)
    response = dns.message.Message(id=query_id)
    response.flags = dns.flags.QR | (query_flags & (dns.flags.RD | dns.flags.CD))
    question_type = dns.rdatatype.RdataType.make(qtype)
    response.question = [
        dns.rrset.RRset(qname, dns.rdataclass.RdataClass.make(qclass), question_type)
    ]
    rcode = _fill(response, lookup, qname, qtype, qclass)
    if edns:
        options: list[dns.edns.Option] = []
        if ecs is not None:
            scope = ecs.source if lookup.geo else 0
            options.append(dns.edns.GenericOption(dns.edns.OptionType.ECS, ecs.option_data(scope)))
        if keepalive is not None:
            data = min(keepalive, 0xFFFF).to_bytes(2, "big")
            options.append(dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, data))
        flags = dns.flags.DO if dnssec_ok else 0
        response.use_edns(0, flags, EDNS_PAYLOAD, options=options)
    response.set_rcode(rcode)  # after the OPT: it holds the extended rcode bits
    return response


def _fill(
    response: dns.message.Message,
    lookup: Lookup,
    qname: dns.name.Name,
    qtype: int,
    qclass: int,
) -> dns.rcode.Rcode:
    """Add the records; return the rcode."""
    view = lookup.view
    origin = to_name(view.origin)
    if qclass != IN or not qname.is_subdomain(origin):
        return dns.rcode.REFUSED
    if qtype in _NOT_A_QUESTION:
        return dns.rcode.FORMERR
    if qtype in _ZONE_TRANSFERS:
        return dns.rcode.REFUSED
    if qtype in _OBSOLETE_META:
        return dns.rcode.NOTIMP
    name = qname.to_text().lower()
    if lookup.failing(name):
        return dns.rcode.SERVFAIL
    response.flags |= dns.flags.AA
    records = lookup.get(name)
    if records is None:
        response.authority.append(_negative_soa(view, origin))
        return dns.rcode.NXDOMAIN
    apex = name == view.origin
    if qtype == ANY:
        qtype = _any_choice(records, apex)
    if records.cname is not None and not apex:
        return _follow_cname(response, lookup, qname, name, records, qtype)
    if not _add_data(response, lookup, qname, apex, records, qtype):
        response.authority.append(_negative_soa(view, origin))
    return dns.rcode.NOERROR


def _follow_cname(
    response: dns.message.Message,
    lookup: Lookup,
    owner: dns.name.Name,
    name: str,
    records: NameRecords,
    qtype: int,
) -> dns.rcode.Rcode:
    """The CNAME at `name`, then the chain inside the zone and the asked data (RFC 1034 4.3.2).

    The rcode is the last name's (RFC 6604): NXDOMAIN when the chain ends at a name
    that does not exist. Targets outside the zone are left to the resolver.
    """
    view = lookup.view
    seen = {name}
    for _ in range(MAX_CNAME_CHAIN):
        target = records.cname
        if target is None:
            apex = name == view.origin
            if not _add_data(response, lookup, owner, apex, records, qtype):
                response.authority.append(_negative_soa(view, to_name(view.origin)))
            return dns.rcode.NOERROR
        target_name = to_name(target)
        rdata = cast(dns.rdata.Rdata, _CNAME_CLASS(IN, CNAME, target_name))
        response.answer.append(_rrset(owner, records.ttl, CNAME, [rdata]))
        if qtype == CNAME or target in seen or not view.in_zone(target):
            return dns.rcode.NOERROR
        seen.add(target)
        if lookup.failing(target):
            response.answer = []
            return dns.rcode.SERVFAIL
        found = lookup.get(target)
        if found is None:
            response.authority.append(_negative_soa(view, to_name(view.origin)))
            return dns.rcode.NXDOMAIN
        owner, name, records = target_name, target, found
        if name == view.origin:  # no CNAME at the apex: it has SOA and NS
            records = dataclasses.replace(records, cname=None)
    return dns.rcode.NOERROR


def _add_data(
    response: dns.message.Message,
    lookup: Lookup,
    owner: dns.name.Name,
    apex: bool,
    records: NameRecords,
    qtype: int,
) -> bool:
    """Add the `qtype` records at `owner` (and their additional data); False: none."""
    view = lookup.view
    if qtype == SOA and apex:
        response.answer.append(_soa(view, owner, view.soa.ttl))
    elif qtype == NS and apex:
        response.answer.append(_ns(view, owner))
        response.additional.extend(_glue(lookup))
    elif qtype == A and records.a:
        response.answer.append(_rrset(owner, records.ttl, A, _a_rdatas(records.a)))
    elif qtype == AAAA and records.aaaa:
        response.answer.append(_rrset(owner, records.ttl, AAAA, _aaaa_rdatas(records.aaaa)))
    elif qtype == SRV and records.srv:
        response.answer.append(_srv(owner, records))
        targets = dict.fromkeys(srv.target for srv in records.srv)
        response.additional.extend(_addresses(lookup, targets))
    else:
        return False
    return True


def _any_choice(records: NameRecords, apex: bool) -> int:
    """RFC 8482: answer ANY with one RRset of our choice (or NODATA)."""
    if apex:
        return SOA
    if records.cname is not None:
        return CNAME
    if records.a:
        return A
    if records.aaaa:
        return AAAA
    if records.srv:
        return SRV
    return ANY


def _rrset(
    owner: dns.name.Name,
    ttl: int,
    rdtype: dns.rdatatype.RdataType,
    rdatas: Iterable[dns.rdata.Rdata],
) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(owner, IN, rdtype)
    for rdata in rdatas:
        rrset.add(rdata, ttl)
    return rrset


def _a_rdatas(addresses: Iterable[str]) -> Iterator[dns.rdata.Rdata]:
    for address in addresses:
        yield cast(dns.rdata.Rdata, _A_CLASS(IN, A, address))


def _aaaa_rdatas(addresses: Iterable[str]) -> Iterator[dns.rdata.Rdata]:
    for address in addresses:
        yield cast(dns.rdata.Rdata, _AAAA_CLASS(IN, AAAA, address))


def _srv(owner: dns.name.Name, records: NameRecords) -> dns.rrset.RRset:
    rdatas = (
        cast(
            dns.rdata.Rdata,
            _SRV_CLASS(IN, SRV, srv.priority, srv.weight, srv.port, to_name(srv.target)),
        )
        for srv in records.srv
    )
    return _rrset(owner, records.ttl, SRV, rdatas)


def _soa(view: ZoneView, owner: dns.name.Name, ttl: int) -> dns.rrset.RRset:
    soa = view.soa
    rdata = _SOA_CLASS(
        IN,
        SOA,
        to_name(soa.mname),
        to_name(soa.rname),
        soa.serial,
        soa.refresh,
        soa.retry,
        soa.expire,
        soa.minimum,
    )
    return _rrset(owner, ttl, SOA, [cast(dns.rdata.Rdata, rdata)])


def _negative_soa(view: ZoneView, origin: dns.name.Name) -> dns.rrset.RRset:
    """The SOA for NXDOMAIN/NODATA, its TTL capped by the minimum (RFC 2308 3)."""
    return _soa(view, origin, min(view.soa.ttl, view.soa.minimum))


def _ns(view: ZoneView, owner: dns.name.Name) -> dns.rrset.RRset:
    rdatas = (cast(dns.rdata.Rdata, _NS_CLASS(IN, NS, to_name(ns.name))) for ns in view.nameservers)
    return _rrset(owner, view.soa.ttl, NS, rdatas)


def _glue(lookup: Lookup) -> Iterator[dns.rrset.RRset]:
    """Addresses of in-zone nameservers: from `names`, else from the Nameserver glue."""
    view = lookup.view
    for ns in view.nameservers:
        if not view.in_zone(ns.name):
            continue
        records = lookup.get(ns.name) if ns.name in view.names else None
        if records is None:
            v4 = tuple(a for a in ns.addresses if ":" not in a)
            v6 = tuple(a for a in ns.addresses if ":" in a)
            records = NameRecords(ttl=view.soa.ttl, a=v4, aaaa=v6)
        yield from _address_rrsets(to_name(ns.name), records)


def _addresses(lookup: Lookup, targets: Iterable[str]) -> Iterator[dns.rrset.RRset]:
    for target in targets:
        records = lookup.get(target) if lookup.view.in_zone(target) else None
        if records is not None:
            yield from _address_rrsets(to_name(target), records)


def _address_rrsets(owner: dns.name.Name, records: NameRecords) -> Iterator[dns.rrset.RRset]:
    if records.a:
        yield _rrset(owner, records.ttl, A, _a_rdatas(records.a))
    if records.aaaa:
        yield _rrset(owner, records.ttl, AAAA, _aaaa_rdatas(records.aaaa))


def render(response: dns.message.Message, limit: int) -> tuple[bytes, bool]:
    """Wire format within `limit` bytes; (wire, truncated).

    Additional records that do not fit are left out silently (RFC 2181 9); when the
    answer or authority does not fit, every section is emptied and TC set, so the
    client retries over TCP.
    """
    wire = response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)
    if not wire[2] & (w.TC >> 8):
        return wire, False
    response.answer = []
    response.authority = []
    response.additional = []
    response.flags |= dns.flags.TC
    return response.to_wire(max_size=limit, want_shuffle=False), True


def respond_slow(
    view: ZoneView,
    packet: bytes,
    *,
    udp: bool,
    max_udp_payload: int = EDNS_PAYLOAD,
    locate: Locate = _no_region,
    draw: Draw = _zero,
    keepalive: int | None = None,
) -> Reply:
    """Answer one raw packet with a full parse; handles every malformed case.

    `locate` and `draw` pick varied names (see `Lookup`); `keepalive` is what to
    answer a TCP query carrying edns-tcp-keepalive with (100 ms units; None: nothing).
    """
    header = w.read_header(packet)
    if header is None:
        return Reply(None, dns.rcode.FORMERR, problem="shorter than a header")
    if header.is_response:
        return Reply(None, dns.rcode.FORMERR, problem="a response, not a query")
    if header.opcode != dns.opcode.QUERY:
        notimp = w.header_reply(packet, dns.rcode.NOTIMP, echo_question=True)
        return Reply(notimp, dns.rcode.NOTIMP)
    if header.qdcount != 1:
        formerr = w.header_reply(packet, dns.rcode.FORMERR, echo_question=False)
        return Reply(formerr, dns.rcode.FORMERR, problem=f"{header.qdcount} questions")
    try:
        query = dns.message.from_wire(packet)
    except dns.message.UnknownTSIGKey:
        notauth = w.header_reply(packet, dns.rcode.NOTAUTH, echo_question=True)
        return Reply(notauth, dns.rcode.NOTAUTH, problem="TSIG signed")
    except Exception as exc:  # dnspython raises many kinds on bad input
        return _formerr(packet, f"unparsable: {exc!r}")
    question = query.question[0]
    edns = query.edns >= 0
    dnssec_ok = bool(query.ednsflags & dns.flags.DO)
    ecs: Ecs | None = None
    wants_keepalive = False
    if query.edns > 0:
        response = dns.message.Message(id=query.id)
        response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
        response.question = [dns.rrset.RRset(question.name, question.rdclass, question.rdtype)]
        response.use_edns(0, dns.flags.DO if dnssec_ok else 0, EDNS_PAYLOAD)
        response.set_rcode(dns.rcode.BADVERS)
    else:
        if edns:
            options = _query_options(packet, udp)
            if isinstance(options, str):
                return _formerr(packet, options)
            ecs, wants_keepalive = options
        response = answer(
            view,
            question.name,
            question.rdtype,
            question.rdclass,
            edns=edns,
            dnssec_ok=dnssec_ok,
            query_id=query.id,
            query_flags=query.flags,
            lookup=Lookup(view, locate=locate, draw=draw, ecs=ecs),
            ecs=ecs,
            keepalive=keepalive if wants_keepalive else None,
        )
    limit = udp_limit(query.payload if edns else -1, max_udp_payload) if udp else MAX_TCP_MESSAGE
    out, truncated = render(response, limit)
    return Reply(out, response.rcode(), question.rdtype, truncated)


def _formerr(packet: bytes, problem: str) -> Reply:
    formerr = w.header_reply(packet, dns.rcode.FORMERR, echo_question=True)
    return Reply(formerr, dns.rcode.FORMERR, problem=problem)


def _query_options(packet: bytes, udp: bool) -> tuple[Ecs | None, bool] | str:
    """(ECS, asks for TCP keepalive) of a parsed query, or why its options are malformed.

    ECS: at most one, valid (RFC 7871 6). edns-tcp-keepalive: ignored over UDP, empty
    over TCP (RFC 7828 3.2.1). Other options are ignored.
    """
    options = w.opt_options(packet)
    if options is None:
        return "OPT record not found again"
    ecs: Ecs | None = None
    keepalive = False
    for code, data in options:
        if code == w.OPTION_ECS:
            if ecs is not None:
                return "several ECS options"
            parsed = w.parse_ecs(data)
            if isinstance(parsed, str):
                return parsed
            ecs = parsed
        elif code == w.OPTION_KEEPALIVE and not udp:
            if data:
                return "edns-tcp-keepalive with a timeout in a query"
            keepalive = True
    return ecs, keepalive
