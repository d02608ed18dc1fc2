"""One Prometheus answer out of many clusters' answers.

Every series gets `cluster="<name>"`; a `cluster` label it already had becomes
`original_cluster` (replacing any `original_cluster` it had). Instant vectors and
matrices are concatenated in cluster-name order, each cluster's series in the
order its Prometheus gave them. A scalar or string answer becomes one vector
sample per cluster, labelled only with `cluster`, so the answer's shape does not
depend on how many clusters took part.

`combine` decides between a (possibly partial) success and an error: a cluster
that failed is named in `warnings`; with `partial_response=false`, or when no
cluster answered, the whole request fails with the most telling error (a bad
query before an execution error before a timeout or an unreachable cluster).
Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from mcobs.query.outcome import (
    INTERNAL,
    Answer,
    Failure,
    Json,
    Outcome,
    Reply,
    error,
    success,
)
from mcobs.query.prune import CLUSTER, ORIGINAL_CLUSTER

_RANK = {"bad_data": 0, "execution": 1, "not_found": 2, "internal": 3, "timeout": 4}


@dataclass(frozen=True, slots=True)
class Merged:
    data: Json
    rejected: tuple[Failure, ...] = ()
    """Answers that could not be merged (wrong shape), as failures."""
    warnings: tuple[str, ...] = ()


Merge = Callable[[Sequence[Answer]], Merged]


def relabel(metric: Mapping[str, str], cluster: str) -> dict[str, str]:
    """`metric` with `cluster` set to `cluster` (the old one kept as `original_cluster`);
    `__name__` first, then the labels sorted, as Prometheus writes them."""
    labels = dict(metric)
    if CLUSTER in labels:
        labels[ORIGINAL_CLUSTER] = labels.pop(CLUSTER)
    labels[CLUSTER] = cluster
    name = labels.pop("__name__", None)
    ordered = {} if name is None else {"__name__": name}
    ordered.update(sorted(labels.items()))
    return ordered


def _names(clusters: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in clusters)


def _failure_warnings(failures: Sequence[Failure]) -> tuple[str, ...]:
    return tuple(f'cluster "{f.cluster}" failed: {f.reason}' for f in failures)


def failed(failures: Sequence[Failure], total: int) -> Reply:
    """The error for a request that failed: the most telling failure's type and status,
    every failed cluster named (grouped by reason)."""
    chosen = min(failures, key=lambda f: (_RANK.get(f.error_type, 5), f.cluster))
    by_reason: dict[str, list[str]] = {}
    for f in sorted(failures, key=lambda f: f.cluster):
        by_reason.setdefault(f.reason, []).append(f.cluster)
    parts = "; ".join(f"{_names(clusters)}: {reason}" for reason, clusters in by_reason.items())
    message = f"{len(failures)} of {total} clusters failed: {parts}"
    return error(chosen.status, chosen.error_type, message)


def combine(outcomes: Sequence[Outcome], *, partial: bool, merge: Merge) -> Reply:
    """A success (partial when allowed) or an error, out of every asked cluster's outcome."""
    answers = [o for o in outcomes if isinstance(o, Answer)]
    failures = [o for o in outcomes if isinstance(o, Failure)]
    if failures and (not partial or not answers):
        return failed(failures, len(outcomes))
    merged = merge(answers)
    failures.extend(merged.rejected)
    if merged.rejected and (not partial or len(merged.rejected) == len(answers)):
        return failed(failures, len(outcomes))
    failures.sort(key=lambda f: f.cluster)
    warnings = (
        _failure_warnings(failures)
        + merged.warnings
        + tuple(f'cluster "{a.cluster}": {w}' for a in answers for w in a.warnings)
    )
    infos = tuple(f'cluster "{a.cluster}": {i}' for a in answers for i in a.infos)
    return success(merged.data, warnings, infos)


# --- query results ------------------------------------------------------------------------


class _Shape(ValueError):
    pass


def _labelled(item: Json, cluster: str) -> dict[str, Json]:
    if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
        raise _Shape("a series without a metric")
    return {**item, "metric": relabel(item["metric"], cluster)}


def _series(answer: Answer) -> tuple[str, list[dict[str, Json]]]:
    """("vector" or "matrix", the relabelled samples or series) of one query answer."""
    data = answer.data
    if not isinstance(data, dict):
        raise _Shape("data is not an object")
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("vector", "matrix"):
        if not isinstance(result, list):
            raise _Shape(f"{kind} result is not a list")
        return kind, [_labelled(item, answer.cluster) for item in result]
    if kind in ("scalar", "string"):
        if not isinstance(result, list) or len(result) != 2:
            raise _Shape(f"{kind} result is not [time, value]")
        return "vector", [{"metric": {CLUSTER: answer.cluster}, "value": result}]
    raise _Shape(f"unknown resultType {kind!r}")


def _rejected(answer: Answer, why: str) -> Failure:
    return Failure(answer.cluster, f"unexpected answer: {why}", INTERNAL, 500)


def merge_results(default: str) -> Merge:
    """Merge `/api/v1/query` or `/api/v1/query_range` answers; `default` is the resultType
    of an answer without any cluster ("vector" or "matrix")."""

    def merge(answers: Sequence[Answer]) -> Merged:
        kind: str | None = None
        result: list[dict[str, Json]] = []
        rejected: list[Failure] = []
        for answer in answers:
            try:
                this, items = _series(answer)
            except _Shape as exc:
                rejected.append(_rejected(answer, str(exc)))
                continue
            if kind is not None and this != kind:
                rejected.append(_rejected(answer, f"a {this} where others gave a {kind}"))
                continue
            kind = this
            result.extend(items)
        return Merged({"resultType": kind or default, "result": result}, tuple(rejected))

    return merge


# --- series, labels, metadata -------------------------------------------------------------


def _limited(items: list[Json], limit: int | None) -> Merged:
    if limit is not None and len(items) > limit:
        return Merged(items[:limit], warnings=(f"results truncated due to limit of {limit}",))
    return Merged(items)


def merge_series(limit: int | None = None) -> Merge:
    """`/api/v1/series`: every cluster's label sets, relabelled."""

    def merge(answers: Sequence[Answer]) -> Merged:
        found: list[Json] = []
        rejected: list[Failure] = []
        for answer in answers:
            data = answer.data
            if not isinstance(data, list) or not all(isinstance(s, dict) for s in data):
                rejected.append(_rejected(answer, "series is not a list of label sets"))
                continue
            found.extend(relabel(s, answer.cluster) for s in data)
        limited = _limited(found, limit)
        return Merged(limited.data, tuple(rejected), limited.warnings)

    return merge


def _string_lists(answers: Sequence[Answer]) -> tuple[list[list[str]], list[Failure]]:
    lists: list[list[str]] = []
    rejected: list[Failure] = []
    for answer in answers:
        data = answer.data
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            rejected.append(_rejected(answer, "data is not a list of strings"))
        else:
            lists.append(data)
    return lists, rejected


def merge_labels(limit: int | None = None) -> Merge:
    """`/api/v1/labels`: the union of label names, plus `cluster` (and `original_cluster`
    when some cluster has a `cluster` label of its own)."""

    def merge(answers: Sequence[Answer]) -> Merged:
        lists, rejected = _string_lists(answers)
        names = {name for names in lists for name in names}
        if CLUSTER in names:
            names.add(ORIGINAL_CLUSTER)
        if answers:
            names.add(CLUSTER)
        limited = _limited(sorted(names), limit)
        return Merged(limited.data, tuple(rejected), limited.warnings)

    return merge


def merge_values(limit: int | None = None) -> Merge:
    """`/api/v1/label/<name>/values`: the union of values."""

    def merge(answers: Sequence[Answer]) -> Merged:
        lists, rejected = _string_lists(answers)
        limited = _limited(sorted({v for values in lists for v in values}), limit)
        return Merged(limited.data, tuple(rejected), limited.warnings)

    return merge


def merge_clusters_with_data(limit: int | None = None) -> Merge:
    """`/api/v1/label/cluster/values?match[]=...`: the clusters that answered with data."""

    def merge(answers: Sequence[Answer]) -> Merged:
        bad = [a for a in answers if not isinstance(a.data, list)]
        rejected = [_rejected(a, "data is not a list") for a in bad]
        names = sorted(a.cluster for a in answers if isinstance(a.data, list) and a.data)
        limited = _limited(list(names), limit)
        return Merged(limited.data, tuple(rejected), limited.warnings)

    return merge


def merge_metadata(answers: Sequence[Answer]) -> Merged:
    """`/api/v1/metadata`: per metric, every distinct entry any cluster gave."""
    merged: dict[str, list[Json]] = {}
    rejected: list[Failure] = []
    for answer in answers:
        data = answer.data
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            rejected.append(_rejected(answer, "metadata is not an object of lists"))
            continue
        for metric, entries in data.items():
            known = merged.setdefault(metric, [])
            known.extend(e for e in entries if e not in known)
    return Merged(dict(sorted(merged.items())), tuple(rejected))
