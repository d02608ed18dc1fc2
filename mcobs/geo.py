"""Where a DNS client is: an IP address -> a region name (for geo answers).

A `Locator` is any callable `address -> region or None` (None: unknown). Two ship here:
`CidrLocator`, a CIDR -> region table where the most specific prefix wins, and
`MaxMindLocator`, a MaxMind DB (GeoIP2/GeoLite2 Country or City, or a custom DB with a
`region` field) whose country or continent code maps to a region through a table.
`first_of` asks several in turn, e.g. the table for your own networks, then MaxMind.

Region names are whatever `ZoneView.varied[...].by_region` uses (cluster regions).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address, IPv6Address, ip_network
from types import MappingProxyType, TracebackType

import maxminddb

IPAddress = IPv4Address | IPv6Address
Locator = Callable[[IPAddress], str | None]

_CODE = re.compile(r"^[A-Z]{2}$")


class GeoError(ValueError):
    """Bad geo settings; `reasons` lists every problem."""

    def __init__(self, reasons: Iterable[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_Prefixes = tuple[tuple[int, Mapping[int, str]], ...]
"""(shift, network bits >> shift -> region) per prefix length, longest prefix first."""


class CidrLocator:
    """The region of the most specific network containing an address.

    One dict per prefix length, so a lookup costs at most one dict probe per
    distinct prefix length in the table. IPv4-mapped IPv6 addresses count as IPv4.
    Raises `GeoError` with every bad entry: not a network, host bits set, no region,
    one network given two regions.
    """

    def __init__(self, table: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        items = table.items() if isinstance(table, Mapping) else table
        problems: list[str] = []
        by_version: dict[int, dict[int, dict[int, str]]] = {4: {}, 6: {}}
        for cidr, region in items:
            try:
                network = ip_network(cidr)
            except ValueError as exc:
                problems.append(f"{cidr!r}: {exc}")
                continue
            if not isinstance(region, str) or not region:
                problems.append(f"{cidr!r}: the region must be a non-empty string")
                continue
            width = network.max_prefixlen
            length = network.prefixlen
            networks = by_version[network.version].setdefault(length, {})
            key = int(network.network_address) >> (width - length)
            if networks.get(key, region) != region:
                problems.append(f"{cidr!r}: given both {networks[key]!r} and {region!r}")
            networks[key] = region
        if problems:
            raise GeoError(problems)
        self._v4 = self._prefixes(by_version[4], 32)
        self._v6 = self._prefixes(by_version[6], 128)
        self.size = sum(len(n) for v in by_version.values() for n in v.values())

    @staticmethod
    def _prefixes(by_length: dict[int, dict[int, str]], width: int) -> _Prefixes:
        return tuple(
            (width - length, MappingProxyType(by_length[length]))
            for length in sorted(by_length, reverse=True)
        )

    def __call__(self, address: IPAddress) -> str | None:
        address = _unmapped(address)
        value = int(address)
        for shift, networks in self._v4 if address.version == 4 else self._v6:
            region = networks.get(value >> shift)
            if region is not None:
                return region
        return None


class MaxMindLocator:
    """Regions from a MaxMind DB, read with the `maxminddb` reader (memory-mapped).

    A record's `field` (default "region"), when it is a string, is the region (mapped
    through `regions` when listed there). Else its `country.iso_code` is looked up in
    `countries`, then its `continent.code` in `continents` (MaxMind codes: AF, AN, AS,
    EU, NA, OC, SA). Addresses the DB does not hold, or cannot hold (IPv6 in an IPv4
    DB), have no region.
    """

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        countries: Mapping[str, str] | None = None,
        continents: Mapping[str, str] | None = None,
        regions: Mapping[str, str] | None = None,
        field: str = "region",
    ) -> None:
        problems = [
            f"{kind} code {code!r}: expected two capital letters"
            for kind, table in (("country", countries), ("continent", continents))
            for code in table or {}
            if not _CODE.fullmatch(code)
        ]
        if problems:
            raise GeoError(problems)
        self._countries = dict(countries or {})
        self._continents = dict(continents or {})
        self._regions = dict(regions or {})
        self._field = field
        self._reader = maxminddb.open_database(os.fspath(database))

    def __call__(self, address: IPAddress) -> str | None:
        try:
            record = self._reader.get(_unmapped(address))
        except ValueError:  # an IPv6 address in an IPv4-only database
            return None
        if not isinstance(record, dict):
            return None
        custom = record.get(self._field)
        if isinstance(custom, str) and custom:
            return self._regions.get(custom, custom)
        country = _code(record.get("country"), "iso_code")
        if country is not None and country in self._countries:
            return self._countries[country]
        continent = _code(record.get("continent"), "code")
        if continent is not None:
            return self._continents.get(continent)
        return None

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> MaxMindLocator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _code(section: object, key: str) -> str | None:
    if isinstance(section, dict):
        code = section.get(key)
        if isinstance(code, str):
            return code.upper()
    return None


def build_locator(
    cidrs: Mapping[str, str] | None = None,
    maxmind: str | os.PathLike[str] | None = None,
    *,
    countries: Mapping[str, str] | None = None,
    continents: Mapping[str, str] | None = None,
    regions: Mapping[str, str] | None = None,
) -> Locator | None:
    """The locator for settings: the CIDR table first, then the MaxMind DB; None: neither."""
    locators: list[Locator] = []
    if cidrs:
        locators.append(CidrLocator(cidrs))
    if maxmind is not None:
        locators.append(
            MaxMindLocator(maxmind, countries=countries, continents=continents, regions=regions)
        )
    if not locators:
        return None
    return locators[0] if len(locators) == 1 else first_of(*locators)


def first_of(*locators: Locator) -> Locator:
    """A locator asking each of `locators` in turn; the first region found wins."""

    def locate(address: IPAddress) -> str | None:
        for locator in locators:
            region = locator(address)
            if region is not None:
                return region
        return None

    return locate
