"""Request parameters of the Prometheus HTTP API, read and validated as Prometheus does.

Parameters come as (name, value) pairs, form body first and then the URL query,
so that a single-valued parameter takes its body value (Go's `FormValue`) and a
repeated one (`match[]`) gets both. A bad value raises `BadData` with the
message Prometheus gives. Plain Python, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

Params: TypeAlias = Sequence[tuple[str, str]]
Form: TypeAlias = tuple[tuple[str, str], ...]

MAX_POINTS = 11_000
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


class BadData(ValueError):
    """A request parameter Prometheus would refuse (HTTP 400, errorType bad_data)."""


def first(params: Params, name: str) -> str | None:
    """The first value of `name`, or None."""
    for key, value in params:
        if key == name:
            return value
    return None


def every(params: Params, name: str) -> tuple[str, ...]:
    return tuple(value for key, value in params if key == name)


def number(value: float) -> str:
    """A float as Prometheus parses it back exactly (`1700000000.5`, `15`)."""
    return str(int(value)) if value == int(value) else repr(value)


def parse_time(value: str, name: str) -> float:
    """A Unix timestamp in seconds or an RFC 3339 time with a zone."""
    try:
        result = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise BadData(
                f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp'
            ) from None
        return moment.timestamp()
    if not math.isfinite(result):
        raise BadData(f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp')
    return result


def parse_duration(value: str, name: str) -> float:
    """Seconds (`15`, `0.5`) or a Prometheus duration (`1m30s`, `500ms`)."""
    try:
        result = float(value)
    except ValueError:
        m = _DURATION.match(value)
        if m is None or not value:
            raise BadData(
                f'invalid parameter "{name}": cannot parse "{value}" to a valid duration'
            ) from None
        return sum(int(g) * unit for g, unit in zip(m.groups(), _UNITS, strict=True) if g)
    if not math.isfinite(result):
        raise BadData(f'invalid parameter "{name}": cannot parse "{value}" to a valid duration')
    return result


def parse_bool(value: str, name: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadData(f'invalid parameter "{name}": cannot parse "{value}" as a boolean')


def _query(params: Params) -> str:
    expr = first(params, "query")
    if not expr or not expr.strip():
        raise BadData('invalid parameter "query": query must not be empty')
    return expr


def _optional(params: Params, name: str) -> str | None:
    value = first(params, name)
    return value if value else None


def _timeout(params: Params) -> float | None:
    value = _optional(params, "timeout")
    if value is None:
        return None
    seconds = parse_duration(value, "timeout")
    if seconds <= 0:
        raise BadData('invalid parameter "timeout": timeout must be positive')
    return seconds


def _partial(params: Params) -> bool:
    value = _optional(params, "partial_response")
    return True if value is None else parse_bool(value, "partial_response")


def _lookback(params: Params) -> Form:
    value = _optional(params, "lookback_delta")
    if value is None:
        return ()
    parse_duration(value, "lookback_delta")
    return (("lookback_delta", value),)


@dataclass(frozen=True, slots=True)
class InstantQuery:
    query: str
    time: float
    timeout: float | None
    """Requested bound on the whole query, seconds."""
    partial_response: bool
    extra: Form = ()

    def form(self, expr: str) -> Form:
        return (("query", expr), ("time", number(self.time)), *self.extra)


@dataclass(frozen=True, slots=True)
class RangeQuery:
    query: str
    start: float
    end: float
    step: float
    timeout: float | None
    partial_response: bool
    extra: Form = ()

    def form(self, expr: str) -> Form:
        return (
            ("query", expr),
            ("start", number(self.start)),
            ("end", number(self.end)),
            ("step", number(self.step)),
            *self.extra,
        )


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """`/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`."""

    matches: tuple[str, ...]
    start: float | None
    end: float | None
    limit: int | None
    partial_response: bool

    def form(self, matches: Sequence[str]) -> Form:
        pairs: list[tuple[str, str]] = [("match[]", m) for m in matches]
        if self.start is not None:
            pairs.append(("start", number(self.start)))
        if self.end is not None:
            pairs.append(("end", number(self.end)))
        if self.limit is not None:
            pairs.append(("limit", str(self.limit)))
        return tuple(pairs)


@dataclass(frozen=True, slots=True)
class MetadataQuery:
    metric: str | None
    limit: int | None
    limit_per_metric: int | None
    partial_response: bool

    def form(self) -> Form:
        pairs: list[tuple[str, str]] = []
        if self.metric is not None:
            pairs.append(("metric", self.metric))
        if self.limit is not None:
            pairs.append(("limit", str(self.limit)))
        if self.limit_per_metric is not None:
            pairs.append(("limit_per_metric", str(self.limit_per_metric)))
        return tuple(pairs)


def instant_query(params: Params, now: float) -> InstantQuery:
    """`/api/v1/query`; without `time`, the query runs at `now` in every cluster."""
    expr = _query(params)
    value = _optional(params, "time")
    at = parse_time(value, "time") if value is not None else round(now, 3)
    return InstantQuery(expr, at, _timeout(params), _partial(params), _lookback(params))


def range_query(params: Params) -> RangeQuery:
    expr = _query(params)
    values = {}
    for name in ("start", "end", "step"):
        value = _optional(params, name)
        if value is None:
            raise BadData(f'invalid parameter "{name}": missing')
        values[name] = value
    start = parse_time(values["start"], "start")
    end = parse_time(values["end"], "end")
    step = parse_duration(values["step"], "step")
    if end < start:
        raise BadData('invalid parameter "end": end timestamp must not be before start time')
    if step <= 0:
        raise BadData(
            'invalid parameter "step": zero or negative query resolution step widths are not '
            "accepted. Try a positive integer"
        )
    if (end - start) / step > MAX_POINTS:
        raise BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    return RangeQuery(expr, start, end, step, _timeout(params), _partial(params), _lookback(params))


def _limit(params: Params, name: str) -> int | None:
    value = _optional(params, name)
    if value is None:
        return None
    try:
        limit = int(value)
    except ValueError:
        raise BadData(f'invalid parameter "{name}": cannot parse "{value}" as a number') from None
    return limit if limit > 0 else None


def series_query(params: Params, *, need_match: bool) -> SeriesQuery:
    matches = every(params, "match[]")
    if need_match and not matches:
        raise BadData("no match[] parameter provided")
    if any(not m.strip() for m in matches):
        raise BadData('invalid parameter "match[]": selector must not be empty')
    start_text, end_text = _optional(params, "start"), _optional(params, "end")
    start = parse_time(start_text, "start") if start_text is not None else None
    end = parse_time(end_text, "end") if end_text is not None else None
    if start is not None and end is not None and end < start:
        raise BadData('invalid parameter "end": end timestamp must not be before start time')
    return SeriesQuery(matches, start, end, _limit(params, "limit"), _partial(params))


def metadata_query(params: Params) -> MetadataQuery:
    return MetadataQuery(
        _optional(params, "metric"),
        _limit(params, "limit"),
        _limit(params, "limit_per_metric"),
        _partial(params),
    )
