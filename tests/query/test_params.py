"""Request parameters are read and refused as Prometheus reads and refuses them."""

from __future__ import annotations

import pytest

from mcobs.query.params import (
    BadData,
    instant_query,
    metadata_query,
    parse_duration,
    parse_time,
    range_query,
    series_query,
)

NOW = 1_700_000_000.1234


def test_instant_query_runs_at_now_everywhere_unless_a_time_is_given() -> None:
    q = instant_query([("query", "up")], NOW)
    assert (q.query, q.time, q.timeout, q.partial_response) == ("up", 1_700_000_000.123, None, True)
    assert q.form("up2") == (("query", "up2"), ("time", "1700000000.123"))
    q = instant_query([("query", "up"), ("time", "2023-11-14T22:13:20Z"), ("timeout", "2s")], NOW)
    assert (q.time, q.timeout) == (1_700_000_000.0, 2.0)
    assert q.form("up") == (("query", "up"), ("time", "1700000000"))


def test_body_values_win_over_url_values() -> None:
    q = instant_query([("query", "from_body"), ("query", "from_url")], NOW)
    assert q.query == "from_body"


def test_partial_response_and_lookback_delta() -> None:
    q = instant_query([("query", "up"), ("partial_response", "false")], NOW)
    assert q.partial_response is False
    q = instant_query([("query", "up"), ("lookback_delta", "1m")], NOW)
    assert q.form("up")[-1] == ("lookback_delta", "1m")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([], 'invalid parameter "query": query must not be empty'),
        ([("query", "  ")], 'invalid parameter "query": query must not be empty'),
        (
            [("query", "up"), ("time", "yesterday")],
            'invalid parameter "time": cannot parse "yesterday" to a valid timestamp',
        ),
        (
            [("query", "up"), ("time", "2024-01-01T00:00:00")],  # no zone
            'invalid parameter "time": cannot parse "2024-01-01T00:00:00" to a valid timestamp',
        ),
        (
            [("query", "up"), ("timeout", "soon")],
            'invalid parameter "timeout": cannot parse "soon" to a valid duration',
        ),
        (
            [("query", "up"), ("timeout", "0")],
            'invalid parameter "timeout": timeout must be positive',
        ),
        (
            [("query", "up"), ("partial_response", "maybe")],
            'invalid parameter "partial_response": cannot parse "maybe" as a boolean',
        ),
    ],
)
def test_bad_instant_queries_are_refused_with_prometheus_messages(
    params: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(BadData) as caught:
        instant_query(params, NOW)
    assert str(caught.value) == message


def test_range_query() -> None:
    q = range_query([("query", "up"), ("start", "100"), ("end", "160.5"), ("step", "15s")])
    assert (q.start, q.end, q.step) == (100.0, 160.5, 15.0)
    assert q.form("x") == (("query", "x"), ("start", "100"), ("end", "160.5"), ("step", "15"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"step": None}, 'invalid parameter "step": missing'),
        ({"start": None}, 'invalid parameter "start": missing'),
        ({"end": "50"}, 'invalid parameter "end": end timestamp must not be before start time'),
        ({"step": "0"}, "zero or negative query resolution step widths are not accepted"),
        ({"step": "-5"}, "zero or negative query resolution step widths are not accepted"),
        ({"step": "1ms"}, "exceeded maximum resolution of 11,000 points per timeseries"),
        ({"step": "1x"}, 'invalid parameter "step": cannot parse "1x" to a valid duration'),
    ],
)
def test_bad_range_queries_are_refused(changes: dict[str, str | None], message: str) -> None:
    values: dict[str, str | None] = {"query": "up", "start": "100", "end": "200", "step": "10"}
    values.update(changes)
    with pytest.raises(BadData, match=message):
        range_query([(k, v) for k, v in values.items() if v is not None])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15", 15.0),
        ("0.5", 0.5),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("2w", 1209600.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "step") == seconds


@pytest.mark.parametrize("text", ["", "1h1d", "m", "nan", "inf"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadData):
        parse_duration(text, "step")


def test_times() -> None:
    assert parse_time("1700000000.5", "t") == 1_700_000_000.5
    assert parse_time("2023-11-14T22:13:20.5+00:00", "t") == 1_700_000_000.5
    with pytest.raises(BadData):
        parse_time("NaN", "t")


def test_series_queries() -> None:
    q = series_query(
        [("match[]", "up"), ("match[]", "x"), ("start", "1"), ("limit", "5")], need_match=True
    )
    assert q.form(["up"]) == (("match[]", "up"), ("start", "1"), ("limit", "5"))
    with pytest.raises(BadData, match=r"no match\[\] parameter provided"):
        series_query([], need_match=True)
    assert series_query([], need_match=False).matches == ()
    with pytest.raises(BadData, match="end timestamp must not be before start time"):
        series_query([("start", "10"), ("end", "5")], need_match=False)
    with pytest.raises(BadData, match="cannot parse"):
        series_query([("limit", "many")], need_match=False)


def test_metadata_query() -> None:
    q = metadata_query([("metric", "up"), ("limit", "2"), ("limit_per_metric", "0")])
    assert q.form() == (("metric", "up"), ("limit", "2"))
