"""The full answer path: a ZoneView and one query in, one response out (dnspython).

`answer` decides the content of a response (pure: no I/O, no clock); `render` turns it
into wire format within a size limit; `respond_slow` does both for a raw packet,
including every error case. The fast path in `responder` caches what this produces.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

from mcobs.dnsserver import wire as w
from mcobs.zone import NameRecords, ZoneView

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
ANY = dns.rdatatype.ANY

_ZONE_TRANSFERS = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
_NOT_A_QUESTION = frozenset({dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY})
_OBSOLETE_META = frozenset({dns.rdatatype.MAILA, dns.rdatatype.MAILB})

# dnspython's rdata constructors are untyped; call them through Any.
_A_CLASS: Any = dns.rdtypes.IN.A.A
_AAAA_CLASS: Any = dns.rdtypes.IN.AAAA.AAAA
_SRV_CLASS: Any = dns.rdtypes.IN.SRV.SRV
_SOA_CLASS: Any = dns.rdtypes.ANY.SOA.SOA
_NS_CLASS: Any = dns.rdtypes.ANY.NS.NS


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
    query_id: int = 0,
    query_flags: int = 0,
) -> dns.message.Message:
    """The response to one question, owner names spelled as in `qname`."""
    response = dns.message.Message(id=query_id)
    response.flags = dns.flags.QR | (query_flags & (dns.flags.RD | dns.flags.CD))
    question_type = dns.rdatatype.RdataType.make(qtype)
    response.question = [
        dns.rrset.RRset(qname, dns.rdataclass.RdataClass.make(qclass), question_type)
    ]
    if edns:
        response.use_edns(0, 0, EDNS_PAYLOAD)
    response.set_rcode(_fill(response, view, qname, qtype, qclass))
    return response


def _fill(
    response: dns.message.Message,
    view: ZoneView,
    qname: dns.name.Name,
    qtype: int,
    qclass: int,
) -> dns.rcode.Rcode:
    """Add the records; return the rcode."""
    origin = to_name(view.origin)
    if qclass != IN or not qname.is_subdomain(origin):
        return dns.rcode.REFUSED
    if qtype in _NOT_A_QUESTION:
        return dns.rcode.FORMERR
    if qtype in _ZONE_TRANSFERS:
        return dns.rcode.REFUSED
    if qtype in _OBSOLETE_META:
        return dns.rcode.NOTIMP
    response.flags |= dns.flags.AA
    name = qname.to_text().lower()
    records = view.lookup(name)
    if records is None:
        response.authority.append(_negative_soa(view, origin))
        return dns.rcode.NXDOMAIN
    apex = name == view.origin
    if qtype == ANY:
        qtype = _any_choice(records, apex)
    if qtype == SOA and apex:
        response.answer.append(_soa(view, qname, view.soa.ttl))
    elif qtype == NS and apex:
        response.answer.append(_ns(view, qname))
        response.additional.extend(_glue(view))
    elif qtype == A and records.a:
        response.answer.append(_rrset(qname, records.ttl, A, _a_rdatas(records.a)))
    elif qtype == AAAA and records.aaaa:
        response.answer.append(_rrset(qname, records.ttl, AAAA, _aaaa_rdatas(records.aaaa)))
    elif qtype == SRV and records.srv:
        response.answer.append(_srv(qname, records))
        targets = dict.fromkeys(srv.target for srv in records.srv)
        response.additional.extend(_addresses(view, targets))
    else:
        response.authority.append(_negative_soa(view, origin))
    return dns.rcode.NOERROR


def _any_choice(records: NameRecords, apex: bool) -> int:
    """RFC 8482: answer ANY with one RRset of our choice (or NODATA)."""
    if apex:
        return SOA
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


def _glue(view: ZoneView) -> Iterator[dns.rrset.RRset]:
    """Addresses of in-zone nameservers: from `names`, else from the Nameserver glue."""
    for ns in view.nameservers:
        if not view.in_zone(ns.name):
            continue
        records = view.names.get(ns.name)
        if records is None:
            v4 = tuple(a for a in ns.addresses if ":" not in a)
            v6 = tuple(a for a in ns.addresses if ":" in a)
            records = NameRecords(ttl=view.soa.ttl, a=v4, aaaa=v6)
        yield from _address_rrsets(to_name(ns.name), records)


def _addresses(view: ZoneView, targets: Iterable[str]) -> Iterator[dns.rrset.RRset]:
    for target in targets:
        records = view.names.get(target) if view.in_zone(target) else None
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
    view: ZoneView, packet: bytes, *, udp: bool, max_udp_payload: int = EDNS_PAYLOAD
) -> Reply:
    """Answer one raw packet with a full parse; handles every malformed case."""
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
        formerr = w.header_reply(packet, dns.rcode.FORMERR, echo_question=True)
        return Reply(formerr, dns.rcode.FORMERR, problem=f"unparsable: {exc!r}")
    question = query.question[0]
    edns = query.edns >= 0
    if query.edns > 0:
        response = dns.message.Message(id=query.id)
        response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
        response.question = [dns.rrset.RRset(question.name, question.rdclass, question.rdtype)]
        response.use_edns(0, 0, EDNS_PAYLOAD)
        response.set_rcode(dns.rcode.BADVERS)
    else:
        response = answer(
            view,
            question.name,
            question.rdtype,
            question.rdclass,
            edns=edns,
            query_id=query.id,
            query_flags=query.flags,
        )
    limit = udp_limit(query.payload if edns else -1, max_udp_payload) if udp else MAX_TCP_MESSAGE
    out, truncated = render(response, limit)
    return Reply(out, response.rcode(), question.rdtype, truncated)
