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


class DnsStats:
    """Mutable counters; cheap to bump from the hot path."""

    __slots__ = (
        "dropped",
        "fast_path",
        "internal_errors",
        "malformed",
        "queries",
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
        self.truncated = 0
        self.malformed = 0
        self.dropped = 0
        self.internal_errors = 0
        self.tcp_connections = 0
        self.tcp_rejected = 0
        self.tcp_timeouts = 0

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
            truncated=self.truncated,
            malformed=self.malformed,
            dropped=self.dropped,
            internal_errors=self.internal_errors,
            tcp_connections=self.tcp_connections,
            tcp_rejected=self.tcp_rejected,
            tcp_timeouts=self.tcp_timeouts,
        )
