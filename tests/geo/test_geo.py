"""Client location: a CIDR table and a real MaxMind DB built with mmdb-writer."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from mcobs.geo import CidrLocator, GeoError, MaxMindLocator, build_locator, first_of

TABLE = {
    "10.0.0.0/8": "corp",
    "10.20.0.0/16": "europe-west",
    "10.20.30.0/24": "europe-north",
    "10.20.30.40/32": "lab",
    "0.0.0.0/0": "elsewhere-v4",
    "2001:db8::/32": "us-east",
    "2001:db8:aa00::/40": "ap-south",
}


@pytest.mark.parametrize(
    ("address", "region"),
    [
        ("10.1.2.3", "corp"),
        ("10.20.1.1", "europe-west"),
        ("10.20.30.1", "europe-north"),
        ("10.20.30.40", "lab"),
        ("10.20.30.41", "europe-north"),
        ("192.0.2.1", "elsewhere-v4"),
        ("2001:db8:1::1", "us-east"),
        ("2001:db8:aa12::1", "ap-south"),
        ("2001:db9::1", None),  # no IPv6 default route in the table
        ("::ffff:10.20.30.40", "lab"),  # IPv4-mapped
    ],
)
def test_most_specific_network_wins(address: str, region: str | None) -> None:
    assert CidrLocator(TABLE)(ip_address(address)) == region


def test_pairs_work_as_well_as_a_mapping() -> None:
    locate = CidrLocator([("192.0.2.0/24", "a"), ("192.0.2.128/25", "b")])
    assert locate(ip_address("192.0.2.1")) == "a"
    assert locate(ip_address("192.0.2.200")) == "b"
    assert locate.size == 2


def test_bad_table_entries_are_all_reported() -> None:
    with pytest.raises(GeoError) as caught:
        CidrLocator(
            [
                ("10.0.0.1/8", "host bits"),
                ("banana", "x"),
                ("192.0.2.0/24", ""),
                ("198.51.100.0/24", "one"),
                ("198.51.100.0/24", "two"),
            ]
        )
    reasons = caught.value.reasons
    assert len(reasons) == 4
    assert [r.split(":")[0] for r in reasons] == [
        "'10.0.0.1/8'",
        "'banana'",
        "'192.0.2.0/24'",
        "'198.51.100.0/24'",
    ]


@pytest.fixture(scope="module")
def mmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GeoIP2-Country-like DB: countries with continents, one custom `region` entry."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    entries = {
        "81.0.0.0/8": {"country": {"iso_code": "DE"}, "continent": {"code": "EU"}},
        "82.0.0.0/8": {"country": {"iso_code": "PT"}, "continent": {"code": "EU"}},
        "3.0.0.0/8": {"country": {"iso_code": "US"}, "continent": {"code": "NA"}},
        "1.0.0.0/8": {"country": {"iso_code": "AU"}, "continent": {"code": "OC"}},
        "100.64.0.0/10": {"region": "edge-pop-7"},
        "2a00::/12": {"country": {"iso_code": "DE"}, "continent": {"code": "EU"}},
    }
    for network, record in entries.items():
        writer.insert_network(IPSet([network]), record)
    path = tmp_path_factory.mktemp("geo") / "country.mmdb"
    writer.to_db_file(str(path))
    return path


@pytest.mark.parametrize(
    ("address", "region"),
    [
        ("81.2.3.4", "europe-central"),  # by country
        ("82.2.3.4", "europe-west"),  # PT is not listed: by continent
        ("3.3.3.3", "us-east"),
        ("1.1.1.1", None),  # OC is in neither table
        ("100.64.1.1", "edge-7"),  # the custom field, mapped
        ("2a01::1", "europe-central"),
        ("192.0.2.1", None),  # not in the DB
        ("::ffff:3.3.3.3", "us-east"),
    ],
)
def test_maxmind_countries_then_continents(mmdb: Path, address: str, region: str | None) -> None:
    with MaxMindLocator(
        mmdb,
        countries={"DE": "europe-central", "US": "us-east"},
        continents={"EU": "europe-west", "NA": "us-east"},
        regions={"edge-pop-7": "edge-7"},
    ) as locate:
        assert locate(ip_address(address)) == region


def test_maxmind_ipv4_database_has_no_ipv6_answers(tmp_path: Path) -> None:
    writer = MMDBWriter(ip_version=4)
    writer.insert_network(IPSet(["3.0.0.0/8"]), {"region": "us-east"})
    path = tmp_path / "v4.mmdb"
    writer.to_db_file(str(path))
    with MaxMindLocator(path) as locate:
        assert locate(ip_address("3.1.1.1")) == "us-east"
        assert locate(ip_address("2001:db8::1")) is None


def test_maxmind_codes_are_checked(mmdb: Path) -> None:
    with pytest.raises(GeoError) as caught:
        MaxMindLocator(mmdb, countries={"de": "x", "DEU": "y"}, continents={"Europe": "z"})
    assert len(caught.value.reasons) == 3


def test_first_of_asks_in_turn(mmdb: Path) -> None:
    with MaxMindLocator(mmdb, countries={"DE": "europe-central"}) as maxmind:
        locate = first_of(CidrLocator({"81.1.0.0/16": "office"}), maxmind)
        assert locate(ip_address("81.1.2.3")) == "office"
        assert locate(ip_address("81.2.2.3")) == "europe-central"
        assert locate(ip_address("192.0.2.1")) is None


def test_build_locator_from_settings(mmdb: Path) -> None:
    assert build_locator() is None
    table_only = build_locator({"81.1.0.0/16": "office"})
    assert table_only is not None and table_only(ip_address("81.1.0.1")) == "office"
    both = build_locator({"81.1.0.0/16": "office"}, mmdb, countries={"DE": "europe-central"})
    assert both is not None
    assert both(ip_address("81.1.0.1")) == "office"
    assert both(ip_address("81.9.0.1")) == "europe-central"
