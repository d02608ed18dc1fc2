"""Response rate limiting (RRL) for UDP, in the spirit of BIND's and NSD's.

UDP answers can be aimed at a victim by spoofing its address; RRL caps what one
client network gets. Each prefix (/24 for IPv4, /56 for IPv6) has a credit that
grows by `responses_per_second` each second, up to one second's worth, and shrinks
by one per query. A prefix out of credit is limited: its queries go unanswered,
except every `slip`-th, which gets an empty answer with TC=1 so a real client
retries over TCP (which is never limited). The debt is capped at `window` seconds
of credit, so a prefix that keeps flooding stays limited until it has been quiet
for up to `window` seconds. Exempt networks (loopback by default) are never limited.
"""

from __future__ import annotations

import enum
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from mcobs.dnsserver.responder import peer_address


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Settings of the response rate limiter. Raises ValueError with every bad field."""

    responses_per_second: float = 200.0
    """Per client prefix. A large resolver farm behind one prefix may need more."""
    window: float = 5.0
    """Seconds of debt a flooding prefix accumulates (and must stay quiet to repay)."""
    slip: int = 2
    """Every slip-th limited query gets an empty TC=1 answer; 0: drop them all."""
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56
    exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Networks never limited."""
    max_prefixes: int = 100_000
    """Prefixes tracked at once; the least recently seen are forgotten first."""

    def __post_init__(self) -> None:
        problems = []
        if not self.responses_per_second > 0:
            problems.append(f"responses_per_second: {self.responses_per_second} is not > 0")
        if not self.window >= 0:
            problems.append(f"window: {self.window} is not >= 0")
        if self.slip < 0:
            problems.append(f"slip: {self.slip} is not >= 0")
        if not 0 <= self.ipv4_prefix <= 32:
            problems.append(f"ipv4_prefix: {self.ipv4_prefix} is not in 0..32")
        if not 0 <= self.ipv6_prefix <= 128:
            problems.append(f"ipv6_prefix: {self.ipv6_prefix} is not in 0..128")
        if self.max_prefixes < 1:
            problems.append(f"max_prefixes: {self.max_prefixes} is not >= 1")
        for network in self.exempt:
            try:
                ipaddress.ip_network(network)
            except ValueError as exc:
                problems.append(f"exempt: {network!r}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))


class Verdict(enum.IntEnum):
    ANSWER = 0
    DROP = 1
    SLIP = 2
    """Answer with an empty TC=1 response."""


_Key = tuple[int, int]
_MISSING = object()


class RateLimiter:
    """Decides, per UDP query, whether its client prefix may have an answer."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._rate = limit.responses_per_second
        self._floor = -limit.window * limit.responses_per_second
        self._exempt = tuple(ipaddress.ip_network(n) for n in limit.exempt)
        self._buckets: OrderedDict[_Key, list[float]] = OrderedDict()
        self._keys: dict[object, _Key | None] = {}
        self._limited = 0

    @property
    def tracked(self) -> int:
        return len(self._buckets)

    def check(self, peer: object) -> Verdict:
        """Count one query from `peer` (an asyncio address tuple) and judge it."""
        try:
            host = peer[0]  # type: ignore[index]
        except (TypeError, IndexError):
            host = None
        key = self._keys.get(host, _MISSING)
        if key is _MISSING:
            key = self._key(peer)
            if len(self._keys) >= self.limit.max_prefixes:
                self._keys.clear()
            self._keys[host] = key
        if key is None:
            return Verdict.ANSWER
        assert isinstance(key, tuple)
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self.limit.max_prefixes:
                buckets.popitem(last=False)
            buckets[key] = [self._rate - 1.0, now]
            return Verdict.ANSWER
        buckets.move_to_end(key)
        credit = min(self._rate, bucket[0] + (now - bucket[1]) * self._rate) - 1.0
        bucket[0] = max(credit, self._floor)
        bucket[1] = now
        if credit >= 0:
            return Verdict.ANSWER
        slip = self.limit.slip
        if slip == 0:
            return Verdict.DROP
        self._limited += 1
        return Verdict.SLIP if self._limited % slip == 0 else Verdict.DROP

    def _key(self, peer: object) -> _Key | None:
        """The client prefix of a peer, None when exempt (or not an IP peer)."""
        address = peer_address(peer)
        if address is None or any(address in network for network in self._exempt):
            return None
        if address.version == 4:
            return 4, int(address) >> (32 - self.limit.ipv4_prefix)
        return 6, int(address) >> (128 - self.limit.ipv6_prefix)
