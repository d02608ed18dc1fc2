"""The DNS-facing view of the catalog: plain records per owner name.

Built by `mcobs.answer.build_zone` (pure) from a catalog snapshot and served by
`mcobs.dnsserver`. Names are absolute, lower case, with the trailing dot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str
    """Absolute name, lower case, trailing dot; resolves inside the zone."""


@dataclass(frozen=True, slots=True)
class NameRecords:
    """Every record at one owner name. An empty instance is a name with no data."""

    ttl: int
    a: tuple[str, ...] = ()
    aaaa: tuple[str, ...] = ()
    srv: tuple[SrvRecord, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.a or self.aaaa or self.srv)


@dataclass(frozen=True, slots=True)
class Nameserver:
    name: str
    """Absolute, lower case, trailing dot."""
    addresses: tuple[str, ...] = ()
    """Glue when the name is inside the zone."""


@dataclass(frozen=True, slots=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int = 3600
    retry: int = 600
    expire: int = 86400
    minimum: int = 30
    """Negative-caching TTL (RFC 2308)."""
    ttl: int = 300


@dataclass(frozen=True, slots=True)
class ZoneView:
    origin: str
    """The zone apex: absolute, lower case, trailing dot."""
    soa: Soa
    nameservers: tuple[Nameserver, ...]
    names: Mapping[str, NameRecords] = field(default_factory=lambda: MappingProxyType({}))
    """Owner names with data (or deliberately without: empty NameRecords)."""
    ancestors: frozenset[str] = frozenset()
    """Empty non-terminals: names between the apex and an owner name, which exist (NODATA)."""

    def in_zone(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)

    def lookup(self, name: str) -> NameRecords | None:
        """Records at `name`, an empty NameRecords for an existing name without data, or None."""
        found = self.names.get(name)
        if found is not None:
            return found
        if name in self.ancestors or name == self.origin:
            return NameRecords(ttl=self.soa.ttl)
        return None
