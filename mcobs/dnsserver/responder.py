"""The answer function of the server: fast path over cached wire responses, slow path else.

A view changes only when the catalog does, so the response to a plain query depends
only on (lower-case name, qtype, EDNS on/off, size limit, ECS family and source prefix)
and, for varied names, on which variant the query picks. The first such query renders
it with the full path; later ones copy it, patching the ID, the RD/CD bits, the question
bytes (which keeps the client's 0x20 case: every owner name in the cached response that
equals the question name is a compression pointer to it) and the ECS address.

The cache is kept per question across views: a new view costs only the entries whose
inputs changed (the records of a name they read, the SOA, the nameservers).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import random
from collections.abc import Callable
from typing import NamedTuple

import dns.name
import dns.rcode
import dns.rdatatype

from mcobs.dnsserver import wire as w
from mcobs.dnsserver.answers import (
    EDNS_PAYLOAD,
    MAX_TCP_MESSAGE,
    Draw,
    Lookup,
    answer,
    render,
    respond_slow,
    udp_limit,
    variant_position,
)
from mcobs.dnsserver.stats import DnsStats
from mcobs.dnsserver.throttle import Throttle
from mcobs.geo import IPAddress, Locator
from mcobs.zone import NameRecords, Nameserver, Soa, VariedRecords, ZoneView

log = logging.getLogger(__name__)

DEFAULT_CACHE_ENTRIES = 100_000
REGION_CACHE_ENTRIES = 65_536
PARSED_ENTRIES = 32_768

_CacheKey = tuple[bytes, int, int, int, int]
"""Name, qtype, EDNS (0: none, 1: EDNS, 2: EDNS with DO), size limit, ECS family << 8 |
source prefix (or -1)."""
_Position = tuple[tuple[str | None, int], ...]
"""Which variant of each varied name of a slot a query picks."""
_Dep = tuple[NameRecords | None, VariedRecords | None, bool, bool]
_MISSING = object()


class _Cached(NamedTuple):
    heads: tuple[bytes, bytes, bytes, bytes]
    """Flags and counts (bytes 2..12), indexed by the query's RD bit | CD bit << 1."""
    tail: bytes
    """Everything after the question, without the ECS address at the very end."""
    rcode: int
    truncated: bool


class _Slot:
    """The cached responses to one question, and what they were rendered from."""

    __slots__ = (
        "deps",
        "generation",
        "nameservers",
        "needs_region",
        "responses",
        "single",
        "soa",
        "varied",
    )

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.deps: dict[str, _Dep] = {}
        """Every name any response read, with what the view held for it."""
        self.soa: Soa | None = None
        self.nameservers: tuple[Nameserver, ...] | None = None
        self.varied: tuple[tuple[str, VariedRecords], ...] = ()
        """Every varied name any response read: the position key covers them all."""
        self.needs_region = False
        self.responses: dict[_Position, _Cached] = {}
        self.single: _Cached | None = None
        """The one response when no varied name is involved (a shortcut)."""


class _Parsed:
    """A plain query seen before: its parse, its cache key, and its slot when last looked up."""

    __slots__ = ("key", "plain", "slot")

    def __init__(self, plain: w.PlainQuery, key: _CacheKey) -> None:
        self.plain = plain
        self.key = key
        self.slot: _Slot | None = None
        """Valid while its generation is the responder's (a slot leaves the cache only
        when the generation moves on)."""


def _dep(view: ZoneView, name: str) -> _Dep:
    return (
        view.names.get(name),
        view.varied.get(name),
        name in view.ancestors,
        name in view.servfail,
    )


def _as_draw(draw: random.Random | Draw | None) -> Draw:
    if draw is None:
        draw = random.Random()
    if isinstance(draw, random.Random):
        return functools.partial(draw.getrandbits, 32)
    return draw


def peer_address(peer: object) -> IPAddress | None:
    """The IP address of an asyncio peer tuple; IPv4-mapped IPv6 counts as IPv4."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None
    try:
        address = ipaddress.ip_address(peer[0].partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Responder:
    """Answers raw packets from a ZoneView; never raises.

    Varied names are picked per query with `draw()` and the client's region:
    `locate(address)` of the ECS address when the query has ECS with a source prefix
    above 0, else of the packet's source address (`peer`). Regions are remembered per
    address (at most `REGION_CACHE_ENTRIES`).

    The cache holds at most `cache_entries` responses and is emptied when full, which
    bounds memory when clients ask for random names. Errors (SERVFAIL) are never cached.
    """

    def __init__(
        self,
        *,
        stats: DnsStats | None = None,
        max_udp_payload: int = EDNS_PAYLOAD,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
        fast_path: bool = True,
        log_throttle: Throttle | None = None,
        locate: Locator | None = None,
        draw: random.Random | Draw | None = None,
        tcp_keepalive: float | None = None,
    ) -> None:
        self.stats = stats if stats is not None else DnsStats()
        self._max_udp_payload = max_udp_payload
        self._cache_entries = cache_entries
        self._fast = fast_path
        self._throttle = log_throttle if log_throttle is not None else Throttle()
        self._error_throttle = Throttle()
        self._locate = locate
        self._draw = _as_draw(draw)
        self._keepalive = None if tcp_keepalive is None else round(tcp_keepalive * 10)
        self._view: ZoneView | None = None
        self._generation = 0
        self._cache: dict[_CacheKey, _Slot] = {}
        self._entries = 0
        self._regions: dict[object, str | None] = {}
        self._parsed: tuple[dict[bytes, _Parsed], dict[bytes, _Parsed]] = ({}, {})
        """Plain queries already parsed, by their bytes after the ID: [TCP, UDP]."""

    @property
    def cached(self) -> int:
        """Responses in the cache."""
        return self._entries

    def respond(
        self, view: ZoneView, packet: bytes, *, udp: bool, peer: object = None
    ) -> bytes | None:
        """The response to one packet, or None to stay silent."""
        try:
            if self._fast:
                memo = self._parsed[udp]
                parsed = memo.get(packet[2:])
                if parsed is None:
                    plain = w.plain_query(packet)
                    if plain is None:
                        return self._respond_slow(view, packet, udp, peer)
                    parsed = _Parsed(plain, self._key(plain, udp))
                    if len(memo) >= PARSED_ENTRIES:
                        memo.clear()
                    memo[packet[2:]] = parsed
                return self._respond_fast(view, packet, parsed, peer)
            return self._respond_slow(view, packet, udp, peer)
        except Exception:
            self.stats.internal_errors += 1
            if self._error_throttle.allow():
                log.exception("internal error answering a DNS packet from %s", peer)
            reply = w.header_reply(packet, dns.rcode.SERVFAIL, echo_question=True)
            self._count_reply(reply, dns.rcode.SERVFAIL)
            return reply

    # -- fast path ---------------------------------------------------------------

    def _key(self, plain: w.PlainQuery, udp: bool) -> _CacheKey:
        ecs = plain.ecs
        edns = 0 if plain.payload < 0 else 2 if plain.dnssec_ok else 1
        limit = udp_limit(plain.payload, self._max_udp_payload) if udp else MAX_TCP_MESSAGE
        return plain.name, plain.qtype, edns, limit, -1 if ecs is None else ecs[0] << 8 | ecs[1]

    def _respond_fast(self, view: ZoneView, packet: bytes, parsed: _Parsed, peer: object) -> bytes:
        if view is not self._view:
            self._switch(view)
        plain = parsed.plain
        ecs = plain.ecs
        slot = parsed.slot
        if slot is None or slot.generation != self._generation:
            slot = self._cache.get(parsed.key)
            if slot is not None and slot.generation != self._generation:
                slot = self._revalidate(parsed.key, slot, view)
            parsed.slot = slot
        cached = None if slot is None else slot.single
        if cached is None:
            lookup = Lookup(view, locate=self._locator(peer), draw=self._draw, ecs=ecs)
            found = None if slot is None else slot.responses.get(self._position(slot, lookup))
            if found is None:
                found = self._fill(parsed.key, slot, plain, lookup)
                parsed.slot = None  # look it up again next time
            cached = found
        stats = self.stats
        stats.fast_path += 1
        stats.queries[plain.qtype] += 1
        stats.responses[cached.rcode] += 1
        if cached.truncated:
            stats.truncated += 1
        head = cached.heads[(packet[2] & 0x01) | (packet[3] & 0x10) >> 3]
        if ecs is None:
            return b"".join((packet[:2], head, packet[12 : plain[2]], cached.tail))
        return b"".join((packet[:2], head, packet[12 : plain[2]], cached.tail, ecs.address))

    def _switch(self, view: ZoneView) -> None:
        if self._view is None or view.origin != self._view.origin:
            self._cache = {}
            self._entries = 0
        self._view = view
        self._generation += 1

    def _revalidate(self, key: _CacheKey, slot: _Slot, view: ZoneView) -> _Slot | None:
        """The slot when every input of its responses is unchanged in `view`, else drop it."""
        valid = (
            (slot.soa is None or slot.soa == view.soa)
            and (slot.nameservers is None or slot.nameservers == view.nameservers)
            and all(_dep(view, name) == dep for name, dep in slot.deps.items())
        )
        if valid:
            slot.generation = self._generation
            return slot
        del self._cache[key]
        self._entries -= len(slot.responses)
        return None

    @staticmethod
    def _position(slot: _Slot, lookup: Lookup) -> _Position:
        if not slot.varied:
            return ()
        region = lookup.region() if slot.needs_region else None
        draw = lookup.draw()
        return tuple(variant_position(varied, region, draw) for _, varied in slot.varied)

    def _fill(
        self, key: _CacheKey, slot: _Slot | None, plain: w.PlainQuery, lookup: Lookup
    ) -> _Cached:
        """Render the response to `plain`, store it and return it (raises: nothing stored)."""
        view = lookup.view
        cached, soa, ns = self._render(plain, key[2], key[3], lookup)
        self.stats.cache_misses += 1
        if cached.rcode == dns.rcode.SERVFAIL:  # a name failing on purpose: ask again next time
            return cached
        if self._entries >= self._cache_entries:
            self._cache = {}
            self._entries = 0
            self._generation += 1  # the slots remembered in `_parsed` are gone too
            slot = None
        if slot is None:
            slot = _Slot(self._generation)
            self._cache[key] = slot
        for name in lookup.read:
            if name not in slot.deps:
                slot.deps[name] = _dep(view, name)
        if soa:
            slot.soa = view.soa
        if ns:
            slot.nameservers = view.nameservers
        known = {name for name, _ in slot.varied}
        new = tuple((name, v) for name, v in lookup.varied.items() if name not in known)
        if new:  # the position key grows: forget responses keyed by the shorter one
            slot.varied += new
            slot.needs_region = any(v.by_region for _, v in slot.varied)
            self._entries -= len(slot.responses)
            slot.responses.clear()
            slot.single = None
        slot.responses[self._position(slot, lookup)] = cached
        slot.single = None if slot.varied else cached
        self._entries += 1
        return cached

    @staticmethod
    def _render(
        plain: w.PlainQuery, edns: int, limit: int, lookup: Lookup
    ) -> tuple[_Cached, bool, bool]:
        """The response, and whether it holds the SOA and the NS records."""
        qname = dns.name.from_wire(plain.name, 0)[0]
        response = answer(
            lookup.view,
            qname,
            plain.qtype,
            edns=edns > 0,
            dnssec_ok=edns == 2,
            lookup=lookup,
            ecs=plain.ecs,
        )
        out, truncated = render(response, limit)
        qend = plain.question_end
        if out[w.HEADER_SIZE : qend - 4] != plain.name:  # the question must lead, uncompressed
            raise AssertionError("cached response does not start with the question")
        tail = out[qend:]
        if plain.ecs is not None and plain.ecs.address:
            if not tail.endswith(plain.ecs.address):
                raise AssertionError("cached response does not end with the ECS address")
            tail = tail[: -len(plain.ecs.address)]
        flags = int.from_bytes(out[2:4], "big")
        counts = out[4:12]
        heads = tuple(
            (flags | (w.RD if index & 1 else 0) | (w.CD if index & 2 else 0)).to_bytes(2, "big")
            + counts
            for index in range(4)
        )
        types = {rrset.rdtype for rrset in (*response.answer, *response.authority)}
        cached = _Cached(
            (heads[0], heads[1], heads[2], heads[3]), tail, response.rcode(), truncated
        )
        return cached, dns.rdatatype.SOA in types, dns.rdatatype.NS in types

    # -- client region -------------------------------------------------------------

    def _locator(self, peer: object) -> Callable[[w.Ecs | None], str | None]:
        return functools.partial(self._region, peer=peer)

    def _region(self, ecs: w.Ecs | None, peer: object) -> str | None:
        locate = self._locate
        if locate is None:
            return None
        key: object
        if ecs is not None and ecs.source:
            key = ecs
        else:
            key = peer[0] if isinstance(peer, tuple) and peer else None
        region = self._regions.get(key, _MISSING)
        if region is not _MISSING:
            assert region is None or isinstance(region, str)
            return region
        address = ecs.ip() if key is ecs and ecs is not None else peer_address(peer)
        try:
            region = locate(address) if address is not None else None
        except Exception:
            if self._error_throttle.allow():
                log.exception("the DNS client locator failed for %s", address)
            return None
        if len(self._regions) >= REGION_CACHE_ENTRIES:
            self._regions.clear()
        self._regions[key] = region
        return region

    # -- slow path -----------------------------------------------------------------

    def _respond_slow(self, view: ZoneView, packet: bytes, udp: bool, peer: object) -> bytes | None:
        reply = respond_slow(
            view,
            packet,
            udp=udp,
            max_udp_payload=self._max_udp_payload,
            locate=self._locator(peer),
            draw=self._draw,
            keepalive=None if udp else self._keepalive,
        )
        stats = self.stats
        stats.slow_path += 1
        if reply.problem is not None:
            stats.malformed += 1
            if self._throttle.allow():
                log.debug("bad DNS packet from %s: %s", peer, reply.problem)
        if reply.qtype is not None:
            stats.queries[reply.qtype] += 1
        if reply.truncated:
            stats.truncated += 1
        self._count_reply(reply.wire, reply.rcode)
        return reply.wire

    def _count_reply(self, reply: bytes | None, rcode: int) -> None:
        if reply is None:
            self.stats.dropped += 1
        else:
            self.stats.responses[rcode] += 1
