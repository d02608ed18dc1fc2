"""The Prometheus HTTP API subset of a simulated cluster.

`/api/v1/query` and `/api/v1/query_range` (GET, or POST with a form),
`/api/v1/status/buildinfo`, `/api/v1/label/<name>/values`, `/-/healthy`,
`/-/ready` and `/metrics` (the simulated series in the text format). Answers and
errors have Prometheus' JSON shape: `{"status": "success", "data": ...}` or
`{"status": "error", "errorType": "bad_data", "error": "..."}`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from mcobs.sim.cluster import SimCluster
from mcobs.sim.gate import Gate
from mcobs.sim.promql import PromQLError, Scalar, Value, query
from mcobs.sim.render import Json
from mcobs.sim.series import LABEL_NAME, exposition, format_value
from mcobs.sim.serving import availability_middleware, drop

Resolve = Callable[[web.BaseRequest], SimCluster | None]
MAX_POINTS = 11000

BUILD_INFO = {
    "version": "2.53.0",
    "revision": "mcobs-sim",
    "branch": "HEAD",
    "buildUser": "mcobs@sim",
    "buildDate": "20240101-00:00:00",
    "goVersion": "go1.22.4",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)?$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _success(data: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data})


def _error(status: int, error_type: str, message: str) -> web.Response:
    body = {"status": "error", "errorType": error_type, "error": message}
    return web.json_response(body, status=status)


class _BadParam(Exception):
    pass


def parse_time(value: str, name: str) -> float:
    """A Unix timestamp or RFC 3339 time, as Prometheus accepts them."""
    try:
        result = float(value)
    except ValueError:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            raise _BadParam(
                f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp'
            ) from None
    if not math.isfinite(result):
        raise _BadParam(f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp')
    return result


def parse_step(value: str) -> float:
    m = _DURATION.match(value)
    if m is None:
        raise _BadParam(f'invalid parameter "step": cannot parse "{value}" to a valid duration')
    return float(m.group(1)) * _UNIT[m.group(2) or "s"]


def _metric(labels: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(labels)


def _instant(value: Value, at: float) -> Json:
    ts = round(at, 3)
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [ts, format_value(value.value)]}
    result = [{"metric": _metric(lb), "value": [ts, format_value(v)]} for lb, v in value.samples]
    return {"resultType": "vector", "result": result}


def _range(value: Value, start: float, end: float, step: float) -> Json:
    times = []
    t = start
    while t <= end + 1e-9:
        times.append(round(t, 3))
        t += step
    samples = [((), value.value)] if isinstance(value, Scalar) else list(value.samples)
    result = [
        {"metric": _metric(lb), "values": [[ts, format_value(v)] for ts in times]}
        for lb, v in samples
    ]
    return {"resultType": "matrix", "result": result}


async def _params(request: web.Request) -> Mapping[str, str]:
    params: dict[str, str] = dict(request.query)
    if request.method == "POST":
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def prom_app(resolve: Resolve) -> web.Application:
    """The Prometheus API of every cluster `resolve` maps a request to."""

    def gate_of(request: web.BaseRequest) -> Gate | None:
        cluster = resolve(request)
        return cluster.gate if cluster else None

    def cluster_of(request: web.BaseRequest) -> SimCluster:
        cluster = resolve(request)
        if cluster is None:
            raise drop(request)
        return cluster

    # Like Prometheus' router, redirect `//api/v1/query` (a base URL ending in "/") to the
    # clean path instead of answering 404.
    merge_slashes = web.normalize_path_middleware(
        append_slash=False, remove_slash=False, merge_slashes=True
    )
    app = web.Application(middlewares=[availability_middleware(gate_of), merge_slashes])

    async def instant_query(request: web.Request) -> web.Response:
        cluster = cluster_of(request)
        params = await _params(request)
        expr = params.get("query")
        if not expr:
            return _error(400, "bad_data", 'invalid parameter "query": query must not be empty')
        try:
            at = parse_time(params["time"], "time") if params.get("time") else cluster.clock()
            return _success(_instant(query(cluster.series, expr), at))
        except _BadParam as exc:
            return _error(400, "bad_data", str(exc))
        except PromQLError as exc:
            return _error(400 if exc.error_type == "bad_data" else 422, exc.error_type, str(exc))

    async def range_query(request: web.Request) -> web.Response:
        cluster = cluster_of(request)
        params = await _params(request)
        expr = params.get("query")
        if not expr:
            return _error(400, "bad_data", 'invalid parameter "query": query must not be empty')
        try:
            for name in ("start", "end", "step"):
                if not params.get(name):
                    raise _BadParam(f'invalid parameter "{name}": missing')
            start = parse_time(params["start"], "start")
            end = parse_time(params["end"], "end")
            step = parse_step(params["step"])
            if end < start:
                raise _BadParam(
                    'invalid parameter "end": end timestamp must not be before start time'
                )
            if step <= 0:
                raise _BadParam(
                    'invalid parameter "step": zero or negative query resolution step widths are '
                    "not accepted. Try a positive integer"
                )
            if (end - start) / step > MAX_POINTS:
                raise _BadParam(
                    "exceeded maximum resolution of 11,000 points per timeseries. "
                    "Try decreasing the query resolution (?step=XX)"
                )
            return _success(_range(query(cluster.series, expr), start, end, step))
        except _BadParam as exc:
            return _error(400, "bad_data", str(exc))
        except PromQLError as exc:
            return _error(400 if exc.error_type == "bad_data" else 422, exc.error_type, str(exc))

    async def build_info(request: web.Request) -> web.Response:
        return _success(dict(BUILD_INFO))

    async def label_values(request: web.Request) -> web.Response:
        cluster = cluster_of(request)
        label = request.match_info["label"]
        if label != "__name__" and not LABEL_NAME.fullmatch(label):
            return _error(400, "bad_data", f'invalid label name: "{label}"')
        samples = cluster.series.samples()
        if label == "__name__":
            values: set[str] = {s.name for s in samples}
        else:
            values = {s.labels[label] for s in samples if label in s.labels}
        return _success(sorted(values))

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="Prometheus Server is Healthy.\n")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="Prometheus Server is Ready.\n")

    async def metrics(request: web.Request) -> web.Response:
        cluster = cluster_of(request)
        return web.Response(
            body=exposition(cluster.series).encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    app.add_routes(
        [
            web.get("/api/v1/query", instant_query),
            web.post("/api/v1/query", instant_query),
            web.get("/api/v1/query_range", range_query),
            web.post("/api/v1/query_range", range_query),
            web.get("/api/v1/status/buildinfo", build_info),
            web.get("/api/v1/label/{label}/values", label_values),
            web.get("/-/healthy", healthy),
            web.get("/-/ready", ready),
            web.get("/metrics", metrics),
        ]
    )
    return app
