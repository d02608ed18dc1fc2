"""Names, timings and small DNS helpers for the resolver tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import dns.asyncquery
import dns.message
import dns.rdatatype

from mcobs.sim.fleet import SimFleet

ZONE = "global.example.com."
WEB = "web.default.global.example.com."
WEB_SRV = "_http._tcp.web.default.global.example.com."
BIG = "big.default.global.example.com."
BIG_ADDRESSES = 40
TTL = 5
"""mcobs' answer TTL in these tests (`dns.default_ttl`, set explicitly although it is
the default): long enough to see a cached answer outlive a failover in mcobs (about a
second), short enough to wait it out."""
QUERY_TIMEOUT = 3.0
NEGATIVE_TTL = 30
"""mcobs' default SOA minimum (`dns.negative_ttl`)."""


async def ask(port: int, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=QUERY_TIMEOUT)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=QUERY_TIMEOUT)


def records(response: dns.message.Message, rdtype: str) -> set[str]:
    """The answer's records of `rdtype` as text (order does not matter to clients)."""
    wanted = dns.rdatatype.from_text(rdtype)
    return {rr.to_text() for rrset in response.answer if rrset.rdtype == wanted for rr in rrset}


def answer_ttl(response: dns.message.Message) -> int:
    return min(rrset.ttl for rrset in response.answer)


async def direct_records(port: int, name: str, rdtype: str, *, tcp: bool = False) -> set[str]:
    """What mcobs itself answers, asked without a resolver in between."""
    return records(await ask(port, name, rdtype, tcp=tcp), rdtype)


def lb_addresses(fleet: SimFleet, cluster: str, name: str = "web") -> tuple[str, str]:
    """The (IPv4, IPv6) load-balancer addresses of a default Service in `cluster`."""
    service = next(s for s in fleet.cluster(cluster).services() if s.name == name)
    ipv4, ipv6 = service.addresses
    return ipv4, ipv6


async def eventually(check: Callable[[], Awaitable[bool]], limit: float) -> float:
    """Seconds until `check` holds; fails the test after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {limit}s")
