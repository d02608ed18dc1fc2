"""The tiny PromQL evaluator over a SeriesStore."""

from __future__ import annotations

import math

import pytest

from mcobs.sim.promql import PromQLError, Scalar, Vector, query
from mcobs.sim.series import SeriesStore, exposition, format_value


@pytest.fixture
def store() -> SeriesStore:
    s = SeriesStore()
    s.set("up", {"job": "apiserver", "instance": "a:6443"}, 1)
    for n, value in ((1, 1), (2, 0), (3, 1)):
        s.set("up", {"job": "node", "instance": f"n{n}:9100"}, value)
    s.set("errors", {"job": "node", "instance": "n1:9100"}, 4)
    return s


def _vec(*samples: tuple[dict[str, str], float]) -> Vector:
    return Vector(tuple((tuple(sorted(labels.items())), value) for labels, value in samples))


def _scalarish(value: Scalar | Vector) -> float:
    if isinstance(value, Scalar):
        return value.value
    ((_, v),) = value.samples
    return v


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(up) / count(up)", 0.75),
        ("avg(up)", 0.75),
        ("min(up)", 0.0),
        ("max(up)", 1.0),
        ("count(up{job='node'})", 3.0),
        ('sum(up{job=~"no.*", instance!="n3:9100"})', 1.0),
        ('count(up{job!~"api.*"})', 3.0),
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("-avg(up) * 100", -75.0),
        ("sum(up) - 1", 2.0),
        ("2 / 4", 0.5),
    ],
)
def test_evaluates(store: SeriesStore, expr: str, expected: float) -> None:
    assert _scalarish(query(store, expr)) == pytest.approx(expected)


def test_a_bare_selector_keeps_the_metric_name(store: SeriesStore) -> None:
    result = query(store, 'up{job="apiserver"}')

    assert result == _vec(({"__name__": "up", "instance": "a:6443", "job": "apiserver"}, 1.0))


def test_grouping_before_or_after_the_argument(store: SeriesStore) -> None:
    by_before = query(store, "sum by (job) (up)")
    by_after = query(store, "sum(up) by (job)")
    without = query(store, "sum without (instance) (up)")

    expected = _vec(({"job": "apiserver"}, 1.0), ({"job": "node"}, 2.0))
    assert by_before == by_after == without == expected


def test_vectors_match_on_identical_labels(store: SeriesStore) -> None:
    result = query(store, "sum by (job) (up) / count by (job) (up)")

    assert result == _vec(({"job": "apiserver"}, 1.0), ({"job": "node"}, 2 / 3))


def test_no_series_is_an_empty_result_not_zero(store: SeriesStore) -> None:
    assert query(store, "sum(missing) / count(missing)") == Vector(())


def test_division_by_zero_follows_ieee(store: SeriesStore) -> None:
    assert _scalarish(query(store, "sum(up) / 0")) == math.inf
    assert math.isnan(_scalarish(query(store, "0 / 0")))


def test_many_to_many_matching_is_an_execution_error(store: SeriesStore) -> None:
    with pytest.raises(PromQLError) as caught:
        query(store, '{instance="n1:9100"} / up')

    assert caught.value.error_type == "execution"


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "sum(up",
        "up[5m]",
        "rate(up[5m])",
        "topk(3, up)",
        "{}",
        '{job=~""}',
        'up{job=~"("}',
        "up == 1",
        "sum(up) )",
        'up{job="x" instance="y"}',
        "up{job=x}",
        "sum(1)",
        "up @ 100",
        "up offset 5m",
    ],
)
def test_unsupported_or_invalid_queries_are_bad_data(store: SeriesStore, expr: str) -> None:
    with pytest.raises(PromQLError) as caught:
        query(store, expr)

    assert caught.value.error_type == "bad_data"


def test_a_pinned_expression_wins_even_when_the_evaluator_cannot_parse_it(
    store: SeriesStore,
) -> None:
    store.pin("histogram_quantile(0.9, rate(x[5m]))", 0.3)
    store.pin("absent_data", None)

    assert query(store, " histogram_quantile(0.9, rate(x[5m])) ") == _vec(({}, 0.3))
    assert query(store, "absent_data") == Vector(())
    assert store.unpin("absent_data")
    assert query(store, "absent_data") == Vector(())  # now a plain selector with no series


def test_values_are_written_as_prometheus_does() -> None:
    assert [format_value(v) for v in (1.0, 0.25, math.nan, math.inf, -math.inf, -3.0)] == [
        "1",
        "0.25",
        "NaN",
        "+Inf",
        "-Inf",
        "-3",
    ]


def test_exposition_escapes_label_values() -> None:
    s = SeriesStore()
    s.set("note", {"text": 'a "b"\\c\nd'}, 2)

    assert exposition(s) == '# TYPE note gauge\nnote{text="a \\"b\\"\\\\c\\nd"} 2\n'


def test_invalid_series_names_are_refused() -> None:
    with pytest.raises(ValueError, match="label name '__x'"):
        SeriesStore().set("up", {"__x": "1"}, 1)
