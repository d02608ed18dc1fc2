"""Counters of the DNS server, for a metrics module to read.

`DnsStats` is mutated on the hot path (plain attribute and dict increments);
`snapshot()` gives a frozen copy with type and rcode names as text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import dns.rcode
import dns.rdatatype


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    queries: Mapping[str, int]
    """Answered queries by question type (text, e.g. "A", "TYPE65280")."""
    responses: Mapping[str, int]
    """Responses sent by rcode (text, e.g. "NOERROR", "BADVERS")."""
    fast_path: int
    slow_path: int
    cache_misses: int
    """Fast-path queries whose response had to be rendered (the rest came from the cache)."""
    truncated: int
    malformed: int
    """Packets we could not parse or that broke the protocol (answered or dropped)."""
    dropped: int
    """Packets left without a response."""
    internal_errors: int
    tcp_connections: int
    tcp_rejected: int
    """Connections closed at once because the connection limit was reached."""
    tcp_timeouts: int
    rate_limited: int
    """UDP queries over the response rate limit that got no response."""
    rate_limited_slipped: int
    """UDP queries over the response rate limit answered empty with TC=1 (retry over TCP)."""


class DnsStats:
    """Mutable counters; cheap to bump from the hot path."""

    __slots__ = (
        "cache_misses",
        "dropped",
        "fast_path",
        "internal_errors",
        "malformed",
        "queries",
        "rate_limited",
        "rate_limited_slipped",
        "responses",
        "slow_path",
        "tcp_connections",
        "tcp_rejected",
        "tcp_timeouts",
        "truncated",
    )

    def __init__(self) -> None:
        self.queries: Counter[int] = Counter()
        self.responses: Counter[int] = Counter()
        self.fast_path = 0
        self.slow_path = 0
        self.cache_misses = 0
        self.truncated = 0
        self.malformed = 0
        self.dropped = 0
        self.internal_errors = 0
        self.tcp_connections = 0
        self.tcp_rejected = 0
        self.tcp_timeouts = 0
        self.rate_limited = 0
        self.rate_limited_slipped = 0

    def snapshot(self) -> StatsSnapshot:
        return StatsSnapshot(
            queries=MappingProxyType(
                {
                    dns.rdatatype.to_text(dns.rdatatype.RdataType.make(k)): v
                    for k, v in sorted(self.queries.items())
                }
            ),
            responses=MappingProxyType(
                {
                    dns.rcode.to_text(dns.rcode.Rcode.make(k)): v
                    for k, v in sorted(self.responses.items())
                }
            ),
            fast_path=self.fast_path,
            slow_path=self.slow_path,
            cache_misses=self.cache_misses,
            truncated=self.truncated,
            malformed=self.malformed,
            dropped=self.dropped,
            internal_errors=self.internal_errors,
            tcp_connections=self.tcp_connections,
            tcp_rejected=self.tcp_rejected,
            tcp_timeouts=self.tcp_timeouts,
            rate_limited=self.rate_limited,
            rate_limited_slipped=self.rate_limited_slipped,
        )
