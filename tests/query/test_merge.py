"""Many clusters' answers become one Prometheus answer."""

from __future__ import annotations

import json

from mcobs.query.merge import (
    combine,
    merge_clusters_with_data,
    merge_labels,
    merge_metadata,
    merge_results,
    merge_series,
    merge_values,
    relabel,
)
from mcobs.query.outcome import Answer, Failure, classify


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, object]:
    return {
        "resultType": "vector",
        "result": [{"metric": m, "value": [100, v]} for m, v in samples],
    }


def test_relabel_adds_cluster_and_keeps_the_old_one_as_original_cluster() -> None:
    assert relabel({"job": "a", "__name__": "up"}, "eu-west") == {
        "__name__": "up",
        "cluster": "eu-west",
        "job": "a",
    }
    relabelled = relabel({"cluster": "k8s-a", "job": "a"}, "eu-west")
    assert relabelled == {"cluster": "eu-west", "job": "a", "original_cluster": "k8s-a"}
    assert list(relabel({"z": "1", "__name__": "m", "a": "2"}, "c")) == [
        "__name__",
        "a",
        "cluster",
        "z",
    ]


def test_vectors_are_concatenated_with_cluster_labels() -> None:
    reply = combine(
        [
            Answer("ap-south", vector(({"__name__": "up"}, "1"))),
            Answer("eu-west", vector(({"__name__": "up", "cluster": "x"}, "0"))),
        ],
        partial=True,
        merge=merge_results("vector"),
    )
    assert reply.status == 200
    assert reply.body == {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"__name__": "up", "cluster": "ap-south"}, "value": [100, "1"]},
                {
                    "metric": {"__name__": "up", "cluster": "eu-west", "original_cluster": "x"},
                    "value": [100, "0"],
                },
            ],
        },
    }


def test_matrices_keep_their_values_and_other_keys() -> None:
    series = {"metric": {"job": "a"}, "values": [[1, "1"], [2, "2"]], "histograms": []}
    reply = combine(
        [Answer("a", {"resultType": "matrix", "result": [series]})],
        partial=True,
        merge=merge_results("matrix"),
    )
    assert reply.body["data"] == {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"cluster": "a", "job": "a"},
                "values": [[1, "1"], [2, "2"]],
                "histograms": [],
            }
        ],
    }


def test_scalars_and_strings_become_a_vector_labelled_by_cluster() -> None:
    reply = combine(
        [
            Answer("a", {"resultType": "scalar", "result": [100, "2"]}),
            Answer("b", {"resultType": "string", "result": [100, "hello"]}),
        ],
        partial=True,
        merge=merge_results("vector"),
    )
    assert reply.body["data"] == {
        "resultType": "vector",
        "result": [
            {"metric": {"cluster": "a"}, "value": [100, "2"]},
            {"metric": {"cluster": "b"}, "value": [100, "hello"]},
        ],
    }


def test_no_cluster_gives_an_empty_result_of_the_expected_type() -> None:
    for kind in ("vector", "matrix"):
        reply = combine([], partial=False, merge=merge_results(kind))
        assert reply.body == {"status": "success", "data": {"resultType": kind, "result": []}}


def test_a_failed_cluster_gives_a_partial_answer_naming_it() -> None:
    reply = combine(
        [
            Answer("a", vector(({}, "1")), warnings=("slow query",), infos=("PromQL info: x",)),
            Failure("b", "timed out after 2s", "timeout"),
            Failure("c", "cannot connect: Connection refused"),
        ],
        partial=True,
        merge=merge_results("vector"),
    )
    assert reply.status == 200
    assert reply.body["warnings"] == [
        'cluster "b" failed: timed out after 2s',
        'cluster "c" failed: cannot connect: Connection refused',
        'cluster "a": slow query',
    ]
    assert reply.body["infos"] == ['cluster "a": PromQL info: x']


def test_without_partial_response_one_failure_fails_the_query() -> None:
    reply = combine(
        [Answer("a", vector()), Failure("b", "timed out after 2s", "timeout")],
        partial=False,
        merge=merge_results("vector"),
    )
    assert reply.status == 503
    assert reply.body == {
        "status": "error",
        "errorType": "timeout",
        "error": '1 of 2 clusters failed: "b": timed out after 2s',
    }


def test_when_every_cluster_fails_the_most_telling_error_wins() -> None:
    parse_error = "bad_data: 1:5: parse error: unexpected end of input"
    reply = combine(
        [
            Failure("a", parse_error, "bad_data", 400),
            Failure("b", "cannot connect: refused"),
            Failure("c", parse_error, "bad_data", 400),
        ],
        partial=True,
        merge=merge_results("vector"),
    )
    assert reply.status == 400
    assert reply.body["errorType"] == "bad_data"
    assert reply.body["error"] == (
        f'3 of 3 clusters failed: "a", "c": {parse_error}; "b": cannot connect: refused'
    )


def test_an_answer_of_the_wrong_shape_counts_as_a_failure() -> None:
    outcomes = [
        Answer("a", vector(({}, "1"))),
        Answer("b", {"resultType": "matrix", "result": []}),
        Answer("c", {"resultType": "weird", "result": []}),
    ]
    reply = combine(outcomes, partial=True, merge=merge_results("vector"))
    assert reply.body["warnings"] == [
        'cluster "b" failed: unexpected answer: a matrix where others gave a vector',
        "cluster \"c\" failed: unexpected answer: unknown resultType 'weird'",
    ]
    assert combine(outcomes, partial=False, merge=merge_results("vector")).status == 500


def test_series_labels_values_and_metadata() -> None:
    series = combine(
        [Answer("a", [{"__name__": "up", "cluster": "k"}]), Answer("b", [{"__name__": "up"}])],
        partial=True,
        merge=merge_series(),
    )
    assert series.body["data"] == [
        {"__name__": "up", "cluster": "a", "original_cluster": "k"},
        {"__name__": "up", "cluster": "b"},
    ]
    labels = merge_labels()([Answer("a", ["job", "cluster"]), Answer("b", ["instance", "job"])])
    assert labels.data == ["cluster", "instance", "job", "original_cluster"]
    assert merge_labels()([Answer("a", ["job"])]).data == ["cluster", "job"]
    values = merge_values(limit=2)([Answer("a", ["x", "y"]), Answer("b", ["w", "x"])])
    assert (values.data, values.warnings) == (["w", "x"], ("results truncated due to limit of 2",))
    with_data = merge_clusters_with_data()([Answer("a", ["up"]), Answer("b", [])])
    assert with_data.data == ["a"]
    meta = merge_metadata(
        [
            Answer("a", {"up": [{"type": "gauge", "help": "", "unit": ""}]}),
            Answer("b", {"up": [{"type": "gauge", "help": "", "unit": ""}], "x": []}),
        ]
    )
    assert meta.data == {"up": [{"type": "gauge", "help": "", "unit": ""}], "x": []}


def test_classify_prometheus_answers() -> None:
    ok = json.dumps({"status": "success", "data": [], "warnings": ["w"]}).encode()
    assert classify("a", 200, ok) == Answer("a", [], ("w",))
    bad = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode()
    assert classify("a", 400, bad) == Failure("a", "bad_data: parse error", "bad_data", 400)
    assert classify("a", 404, b"404 page not found") == Failure(
        "a", "HTTP 404, not a Prometheus API answer"
    )
    assert classify("a", 502, b"[]") == Failure("a", "HTTP 502, not a Prometheus API answer")
