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
    """Every record at one owner name. An empty instance is a name with no data.

    A name with a `cname` has no other data (RFC 1034 3.6.2).
    """

    ttl: int
    a: tuple[str, ...] = ()
    aaaa: tuple[str, ...] = ()
    srv: tuple[SrvRecord, ...] = ()
    cname: str | None = None
    """Absolute target name, lower case, trailing dot (e.g. a cloud load balancer)."""

    @property
    def empty(self) -> bool:
        return not (self.a or self.aaaa or self.srv or self.cname)


@dataclass(frozen=True, slots=True)
class VariedRecords:
    """Records at a name that depend on the client's region (geo) or on chance (weighted).

    The server picks, per query: the client's region's variants when `by_region`
    has the region, else `variants`; then one of those uniformly at random. Every
    variant was drawn by the pure answer code, so picking uniformly among them
    reproduces the strategy's weights.
    """

    variants: tuple[NameRecords, ...]
    by_region: Mapping[str, tuple[NameRecords, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    geo: bool = False
    """The answer depends on where the client is: echo the ECS source prefix as scope."""


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


class EveryName(frozenset[str]):
    """Contains every name: the `servfail` set of a view with no catalog loaded yet."""

    def __contains__(self, name: object) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EveryName)

    def __hash__(self) -> int:
        return hash(EveryName)


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
    varied: Mapping[str, VariedRecords] = field(default_factory=lambda: MappingProxyType({}))
    """Names whose answer is picked per query; `names` holds their first variant."""
    servfail: frozenset[str] = frozenset()
    """Names answered SERVFAIL: a service whose last-resort policy is `servfail` and
    no cluster can serve."""

    @classmethod
    def not_loaded(cls, origin: str, soa: Soa, nameservers: tuple[Nameserver, ...]) -> ZoneView:
        """Before the first catalog snapshot: SERVFAIL for every name, never NXDOMAIN,
        which resolvers would cache for names that exist."""
        return cls(origin=origin, soa=soa, nameservers=nameservers, servfail=EveryName())

    def in_zone(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)

    def pick(self, name: str, region: str | None, draw: int) -> NameRecords | None:
        """The records to answer at `name` for a client in `region`, with a random `draw` >= 0."""
        varied = self.varied.get(name)
        if varied is None:
            return self.lookup(name)
        choices = varied.by_region.get(region, varied.variants) if region else varied.variants
        return choices[draw % len(choices)]

    def lookup(self, name: str) -> NameRecords | None:
        """Records at `name`, an empty NameRecords for an existing name without data, or None."""
        found = self.names.get(name)
        if found is not None:
            return found
        if name in self.ancestors or name == self.origin:
            return NameRecords(ttl=self.soa.ttl)
        return None
