"""The Prometheus-compatible HTTP endpoints of the global query (aiohttp handlers).

Each handler reads the parameters, plans which clusters to ask (pure), fans the
request out, and merges the answers (pure). Mount them with
`app.add_routes(query_routes(fanout))`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from mcobs.query.fanout import Fanout, api_path
from mcobs.query.merge import (
    Merge,
    combine,
    merge_clusters_with_data,
    merge_labels,
    merge_metadata,
    merge_results,
    merge_series,
    merge_values,
)
from mcobs.query.outcome import Reply, bad_data, success
from mcobs.query.params import (
    BadData,
    Form,
    Params,
    SeriesQuery,
    first,
    instant_query,
    metadata_query,
    range_query,
    series_query,
)
from mcobs.query.prune import CLUSTER, ORIGINAL_CLUSTER, plan_matches, plan_query

BUILD_INFO = {
    "version": "2.53.0",
    "revision": "mcobs",
    "branch": "HEAD",
    "buildUser": "mcobs",
    "buildDate": "20240101-00:00:00",
    "goVersion": "go1.22.4",
}
"""What `/api/v1/status/buildinfo` reports: a recent Prometheus, so that Grafana enables
the API features (label values with `match[]`, metadata) that mcobs serves."""

READ_ONLY_POST_PATHS = frozenset(
    {
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/query_exemplars",
    }
)
"""Paths where POST only reads (a form-encoded query, as Grafana sends by default): an
authorisation check for mutating calls should let them through like GETs."""

NO_CLUSTERS = "no cluster with a Prometheus URL is configured"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


async def read_params(request: web.Request) -> list[tuple[str, str]]:
    """Form body parameters (POST) first, then URL query parameters."""
    pairs: list[tuple[str, str]] = []
    if request.method == "POST":
        try:
            form = await request.post()
        except (LookupError, UnicodeDecodeError, ValueError):
            raise web.HTTPBadRequest(reason="the form body cannot be decoded") from None
        pairs.extend((k, v) for k, v in form.items() if isinstance(v, str))
    pairs.extend(request.query.items())
    return pairs


def render(reply: Reply) -> web.Response:
    return web.json_response(dict(reply.body), status=reply.status)


class _Handlers:
    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout

    async def fan(
        self,
        method: str,
        path: str,
        forms: Mapping[str, Form],
        *,
        partial: bool,
        merge: Merge,
        limit: float | None = None,
        send_timeout: bool = False,
    ) -> web.Response:
        outcomes = await self.fanout.run(
            method, path, forms, limit=limit, send_timeout=send_timeout
        )
        reply = combine(outcomes, partial=partial, merge=merge)
        if not self.fanout.clusters() and reply.status == 200:
            reply = success(reply.body["data"], (NO_CLUSTERS,))
        return render(reply)

    async def query(self, request: web.Request) -> web.Response:
        try:
            q = instant_query(await read_params(request), self.fanout.now())
        except BadData as exc:
            return render(bad_data(str(exc)))
        plan = plan_query(q.query, self.fanout.clusters())
        return await self.fan(
            "POST",
            api_path("query"),
            {cluster: q.form(expr) for cluster, expr in plan.queries.items()},
            partial=q.partial_response,
            merge=merge_results("vector"),
            limit=q.timeout,
            send_timeout=True,
        )

    async def query_range(self, request: web.Request) -> web.Response:
        try:
            q = range_query(await read_params(request))
        except BadData as exc:
            return render(bad_data(str(exc)))
        plan = plan_query(q.query, self.fanout.clusters())
        return await self.fan(
            "POST",
            api_path("query_range"),
            {cluster: q.form(expr) for cluster, expr in plan.queries.items()},
            partial=q.partial_response,
            merge=merge_results("matrix"),
            limit=q.timeout,
            send_timeout=True,
        )

    def _series_forms(self, q: SeriesQuery) -> dict[str, Form]:
        planned = plan_matches(q.matches, self.fanout.clusters())
        return {cluster: q.form(matches) for cluster, matches in planned.items()}

    async def series(self, request: web.Request) -> web.Response:
        try:
            q = series_query(await read_params(request), need_match=True)
        except BadData as exc:
            return render(bad_data(str(exc)))
        return await self.fan(
            "POST",
            api_path("series"),
            self._series_forms(q),
            partial=q.partial_response,
            merge=merge_series(q.limit),
        )

    async def labels(self, request: web.Request) -> web.Response:
        try:
            q = series_query(await read_params(request), need_match=False)
        except BadData as exc:
            return render(bad_data(str(exc)))
        return await self.fan(
            "POST",
            api_path("labels"),
            self._series_forms(q),
            partial=q.partial_response,
            merge=merge_labels(q.limit),
        )

    async def label_values(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name != "__name__" and not _LABEL_NAME.fullmatch(name):
            return render(bad_data(f'invalid label name: "{name}"'))
        try:
            q = series_query(await read_params(request), need_match=False)
        except BadData as exc:
            return render(bad_data(str(exc)))
        forms = self._series_forms(q)
        if name == CLUSTER:
            if not q.matches:
                names = sorted(forms)
                return render(success(names[: q.limit] if q.limit else names))
            # A cluster has the label value when it has a series matching a selector.
            path, merge = api_path("label", "__name__", "values"), merge_clusters_with_data(q.limit)
        else:
            remote = CLUSTER if name == ORIGINAL_CLUSTER else name
            path, merge = api_path("label", remote, "values"), merge_values(q.limit)
        return await self.fan("GET", path, forms, partial=q.partial_response, merge=merge)

    async def metadata(self, request: web.Request) -> web.Response:
        try:
            q = metadata_query(await read_params(request))
        except BadData as exc:
            return render(bad_data(str(exc)))
        forms = {cluster: q.form() for cluster in self.fanout.clusters()}
        return await self.fan(
            "GET", api_path("metadata"), forms, partial=q.partial_response, merge=merge_metadata
        )

    async def exemplars(self, request: web.Request) -> web.Response:
        params: Params = await read_params(request)
        if not first(params, "query"):
            return render(bad_data('invalid parameter "query": query must not be empty'))
        return render(success([]))

    async def buildinfo(self, request: web.Request) -> web.Response:
        return render(success(dict(BUILD_INFO)))


def query_routes(fanout: Fanout) -> list[web.RouteDef]:
    """The Prometheus HTTP API endpoints answered by fanning out to every cluster."""
    h = _Handlers(fanout)
    routes: list[web.RouteDef] = []
    get_or_post = {
        "/api/v1/query": h.query,
        "/api/v1/query_range": h.query_range,
        "/api/v1/series": h.series,
        "/api/v1/labels": h.labels,
        "/api/v1/query_exemplars": h.exemplars,
    }
    if get_or_post.keys() != READ_ONLY_POST_PATHS:  # keep the two lists in step
        raise RuntimeError("READ_ONLY_POST_PATHS is out of date")
    for path, handler in get_or_post.items():
        routes += [web.get(path, handler), web.post(path, handler)]
    routes += [
        web.get("/api/v1/label/{name}/values", h.label_values),
        web.get("/api/v1/metadata", h.metadata),
        web.get("/api/v1/status/buildinfo", h.buildinfo),
    ]
    return routes
