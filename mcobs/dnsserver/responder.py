"""The answer function of the server: fast path over cached wire responses, slow path else.

A view changes only when the catalog does, so the response to a plain query depends
only on (lower-case name, qtype, EDNS on/off, size limit). The first such query renders
it with the full path; later ones copy it, patching the ID, the RD/CD bits and the
question bytes (which keeps the client's 0x20 case: every owner name in the cached
response that equals the question name is a compression pointer to it).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import dns.name
import dns.rcode

from mcobs.dnsserver import wire as w
from mcobs.dnsserver.answers import (
    EDNS_PAYLOAD,
    MAX_TCP_MESSAGE,
    answer,
    render,
    respond_slow,
    udp_limit,
)
from mcobs.dnsserver.stats import DnsStats
from mcobs.dnsserver.throttle import Throttle
from mcobs.zone import ZoneView

log = logging.getLogger(__name__)

DEFAULT_CACHE_ENTRIES = 100_000

_CacheKey = tuple[bytes, int, bool, int]


class _Cached(NamedTuple):
    heads: tuple[bytes, bytes, bytes, bytes]
    """Flags and counts (bytes 2..12), indexed by the query's RD | CD bits (see `_flag_index`)."""
    tail: bytes
    """Everything after the question."""
    rcode: int
    truncated: bool


def _flag_index(packet: bytes) -> int:
    return (packet[2] & 0x01) | (packet[3] & 0x10) >> 3


class Responder:
    """Answers raw packets from a ZoneView; never raises.

    The cache belongs to one view object: a different view (by identity) starts a
    fresh one. It holds at most `cache_entries` responses and is emptied when full,
    which bounds memory when clients ask for random names.
    """

    def __init__(
        self,
        *,
        stats: DnsStats | None = None,
        max_udp_payload: int = EDNS_PAYLOAD,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
        fast_path: bool = True,
        log_throttle: Throttle | None = None,
    ) -> None:
        self.stats = stats if stats is not None else DnsStats()
        self._max_udp_payload = max_udp_payload
        self._cache_entries = cache_entries
        self._fast = fast_path
        self._throttle = log_throttle if log_throttle is not None else Throttle()
        self._error_throttle = Throttle()
        self._view: ZoneView | None = None
        self._cache: dict[_CacheKey, _Cached] = {}

    @property
    def cached(self) -> int:
        return len(self._cache)

    def respond(
        self, view: ZoneView, packet: bytes, *, udp: bool, peer: object = None
    ) -> bytes | None:
        """The response to one packet, or None to stay silent."""
        try:
            if self._fast:
                plain = w.plain_query(packet)
                if plain is not None:
                    return self._respond_fast(view, packet, plain, udp)
            return self._respond_slow(view, packet, udp, peer)
        except Exception:
            self.stats.internal_errors += 1
            if self._error_throttle.allow():
                log.exception("internal error answering a DNS packet from %s", peer)
            reply = w.header_reply(packet, dns.rcode.SERVFAIL, echo_question=True)
            self._count_reply(reply, dns.rcode.SERVFAIL)
            return reply

    def _respond_fast(self, view: ZoneView, packet: bytes, plain: w.PlainQuery, udp: bool) -> bytes:
        if view is not self._view:
            self._view = view
            self._cache = {}
        edns = plain.payload >= 0
        limit = udp_limit(plain.payload, self._max_udp_payload) if udp else MAX_TCP_MESSAGE
        key = (plain.name, plain.qtype, edns, limit)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._render(view, plain, edns, limit)
            if len(self._cache) >= self._cache_entries:
                self._cache.clear()
            self._cache[key] = cached
        stats = self.stats
        stats.fast_path += 1
        stats.queries[plain.qtype] += 1
        stats.responses[cached.rcode] += 1
        if cached.truncated:
            stats.truncated += 1
        qend = plain.question_end
        return b"".join(
            (
                packet[:2],
                cached.heads[_flag_index(packet)],
                packet[w.HEADER_SIZE : qend],
                cached.tail,
            )
        )

    @staticmethod
    def _render(view: ZoneView, plain: w.PlainQuery, edns: bool, limit: int) -> _Cached:
        qname = dns.name.from_wire(plain.name, 0)[0]
        response = answer(view, qname, plain.qtype, edns=edns)
        out, truncated = render(response, limit)
        qend = plain.question_end
        if out[w.HEADER_SIZE : qend - 4] != plain.name:  # the question must lead, uncompressed
            raise AssertionError("cached response does not start with the question")
        flags = int.from_bytes(out[2:4], "big")
        counts = out[4:12]
        heads = tuple(
            (flags | (w.RD if index & 1 else 0) | (w.CD if index & 2 else 0)).to_bytes(2, "big")
            + counts
            for index in range(4)
        )
        return _Cached(
            (heads[0], heads[1], heads[2], heads[3]), out[qend:], response.rcode(), truncated
        )

    def _respond_slow(self, view: ZoneView, packet: bytes, udp: bool, peer: object) -> bytes | None:
        reply = respond_slow(view, packet, udp=udp, max_udp_payload=self._max_udp_payload)
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
