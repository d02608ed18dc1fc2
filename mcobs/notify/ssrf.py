"""Which target addresses a consumer with `deny_private` may not reach (pure).

Denied: loopback, private (RFC 1918, unique local), link-local (including the
cloud metadata address 169.254.169.254), unspecified, multicast, reserved and
any other address that is not globally routable (shared CGNAT space,
documentation ranges). An IPv4-mapped IPv6 address is judged as its IPv4
address. A host is denied when *any* address it resolves to is denied, so a
name cannot smuggle one internal address among public ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def denied_reason(address: str) -> str | None:
    """Why `address` (an IP literal) is denied, e.g. `127.0.0.1 (loopback)`; None when public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, hit in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    ):
        if hit:
            return f"{ip} ({kind})"
    return None


def first_denied(addresses: Iterable[str]) -> str | None:
    """The reason for the first denied address among `addresses`, if any."""
    for address in addresses:
        reason = denied_reason(address)
        if reason is not None:
            return reason
    return None
