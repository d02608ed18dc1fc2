"""The stored encoding: lossless round trips, strict decoding with named fields."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from typing import Any

import pytest

from mcobs.catalog.codec import (
    SCHEMA,
    CatalogDecodeError,
    check_report,
    report_from_bytes,
    report_from_dict,
    report_to_bytes,
    report_to_dict,
)
from mcobs.model import Signal
from tests.catalog.builders import random_report, report, service


def _strict_json(raw: bytes) -> Any:
    def no_constants(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(raw, parse_constant=no_constants)


def test_round_trip_of_a_full_report() -> None:
    original = report(services=3)
    assert report_from_bytes(report_to_bytes(original)) == original
    assert report_from_dict(report_to_dict(original)) == original


def test_round_trip_of_random_reports() -> None:
    for seed in range(300):
        original = random_report(random.Random(seed))
        raw = report_to_bytes(original)
        _strict_json(raw)
        assert report_from_bytes(raw) == original, f"seed {seed}"


def test_encoding_is_versioned_standard_json() -> None:
    data = _strict_json(report_to_bytes(report()))
    assert data["schema"] == SCHEMA == 1
    assert data["cluster"] == "eu-west"
    assert data["services"][0]["ports"][0] == {"name": "http", "port": 80, "protocol": "TCP"}


def test_non_finite_numbers_survive_as_strings() -> None:
    original = replace(
        report(),
        signals=(Signal("a", math.nan), Signal("b", math.inf), Signal("c", -math.inf)),
    )
    raw = report_to_bytes(original)
    assert [s["value"] for s in _strict_json(raw)["signals"]] == ["NaN", "+Inf", "-Inf"]
    values = [s.value for s in report_from_bytes(raw).signals]
    assert values[0] is not None and math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def _reasons(data: object) -> tuple[str, ...]:
    with pytest.raises(CatalogDecodeError) as caught:
        report_from_dict(data)
    return caught.value.reasons


def _encoded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(report_to_bytes(report(services=2)))
    return data


def test_unknown_schema_is_refused() -> None:
    data = _encoded()
    data["schema"] = 2
    with pytest.raises(CatalogDecodeError) as caught:
        report_from_dict(data)
    assert caught.value.cluster == "eu-west"
    assert "unsupported schema 2" in str(caught.value)
    del data["schema"]
    assert "unsupported schema None" in _reasons(data)[0]


def test_every_problem_is_named_by_its_path() -> None:
    data = _encoded()
    data["services"][1]["ports"][0]["port"] = "80"
    data["probe"]["nodes_ready"] = True
    data["health"]["state"] = "sick"
    del data["region"]
    data["extra"] = 1
    data["labels"]["env"] = 3
    assert sorted(_reasons(data)) == [
        "extra: unknown field",
        "health.state: unknown health state 'sick'",
        "labels.env: expected a string, got integer",
        "probe.nodes_ready: expected an integer, got boolean",
        "region: missing",
        "services[1].ports[0].port: expected an integer, got string",
    ]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("services", 0, "addresses", 0), "10.0.0.256", "is not an IP address"),
        (("services", 0, "addresses", 0), "2001:DB8::1", "is not canonical (2001:db8::1)"),
        (("services", 0, "ports", 1, "port"), 70000, "out of range (0..65535)"),
        (("services", 0, "ready_endpoints"), -1, "out of range (>= 0)"),
        (("services", 0, "name"), "", "must not be empty"),
        (("cluster",), "", "must not be empty"),
        (("observed_at",), "soon", 'expected a number, "NaN", "+Inf" or "-Inf"'),
        (("weight",), None, "expected a number"),
        (("services_synced",), 1, "expected a boolean, got integer"),
        (("services",), {}, "expected an array, got object"),
        (("probe",), [], "expected an object, got array"),
        (("signals", 0, "value"), [1], "expected a number"),
    ],
)
def test_invalid_values_are_refused(
    path: tuple[str | int, ...], value: object, reason: str
) -> None:
    data = _encoded()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    reasons = _reasons(data)
    assert len(reasons) == 1 and reason in reasons[0], reasons


@pytest.mark.parametrize(
    "raw", [b"", b"garbage", b"[1, 2]", b"\xff\xfe", b'{"schema": NaN}', b"null"]
)
def test_malformed_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(CatalogDecodeError):
        report_from_bytes(raw)


def test_a_report_that_would_not_read_back_is_refused_at_write() -> None:
    bad = replace(report(), services=(service("eu-west", addresses=("2001:DB8::1",)),))
    with pytest.raises(CatalogDecodeError, match=r"services\[0\]\.addresses\[0\]"):
        check_report(bad)
    assert report_from_bytes(check_report(report())) == report()
