"""The Kubernetes API subset of a simulated cluster: discovery, list, get and watch.

Serves Nodes, Services and EndpointSlices the way kube-apiserver does, enough for
the official Python client and kubectl: bearer-token authentication, `Status`
errors, server-side `Table`s for `kubectl get`, and watches that replay recent
history, start with synthetic ADDED events from version "0", send bookmarks
when asked, and answer a compacted version with an `ERROR` 410 Expired event.
`labelSelector` supports equality and existence terms, `fieldSelector`
`metadata.name` and `metadata.namespace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from mcobs.sim import discovery, render
from mcobs.sim.cluster import SimCluster
from mcobs.sim.gate import Gate
from mcobs.sim.render import Json
from mcobs.sim.serving import Handler, availability_middleware, drop
from mcobs.sim.state import Event, Obj, Resource

Resolve = Callable[[web.BaseRequest], SimCluster | None]
MAX_WATCH_TIMEOUT = 3600


@dataclass(frozen=True, slots=True)
class WatchSettings:
    default_timeout: float = 1800.0
    """Seconds a watch lasts without `timeoutSeconds` (kube-apiserver: 30 to 60 min)."""
    bookmark_interval: float = 60.0
    """Seconds between BOOKMARK events when the client allows them."""


# --- selectors ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    namespace: str | None = None
    labels: tuple[tuple[str, str, str], ...] = ()
    """(op, key, value) with op one of =, !=, exists, !exists."""
    fields: tuple[tuple[str, str, str], ...] = ()
    """(op, field, value) with op = or !=."""

    def matches(self, obj: Obj) -> bool:
        meta = obj.meta
        if self.namespace is not None and meta.namespace != self.namespace:
            return False
        for op, key, value in self.labels:
            has, actual = key in meta.labels, meta.labels.get(key)
            if (
                (op == "=" and actual != value)
                or (op == "!=" and actual == value)
                or (op == "exists" and not has)
                or (op == "!exists" and has)
            ):
                return False
        for op, name, value in self.fields:
            actual = meta.name if name == "metadata.name" else meta.namespace
            if (actual == value) != (op == "="):
                return False
        return True


class BadRequest(Exception):
    pass


def _terms(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_selection(namespace: str | None, labels: str, fields: str) -> Selection:
    """A Selection from query parameters; raises BadRequest naming the bad term."""
    label_terms: list[tuple[str, str, str]] = []
    if "(" in labels:
        raise BadRequest(
            f"unable to parse requirement: set-based selector {labels!r} not supported"
        )
    for term in _terms(labels):
        for op in ("!=", "==", "="):
            if op in term:
                key, value = (s.strip() for s in term.split(op, 1))
                label_terms.append(("!=" if op == "!=" else "=", key, value))
                break
        else:
            if term.startswith("!"):
                label_terms.append(("!exists", term[1:].strip(), ""))
            else:
                label_terms.append(("exists", term, ""))
    field_terms: list[tuple[str, str, str]] = []
    for term in _terms(fields):
        for op in ("!=", "==", "="):
            if op in term:
                name, value = (s.strip() for s in term.split(op, 1))
                if name not in ("metadata.name", "metadata.namespace"):
                    raise BadRequest(f'field label not supported: "{name}"')
                field_terms.append(("!=" if op == "!=" else "=", name, value))
                break
        else:
            raise BadRequest(f"invalid selector: {term!r}; can't understand it")
    return Selection(namespace, tuple(label_terms), tuple(field_terms))


# --- responses ---------------------------------------------------------------------------


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def _json(body: Json, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def _status(code: int, reason: str, message: str, details: Json | None = None) -> web.Response:
    return _json(render.status(code, reason, message, details), code)


def _wants_table(request: web.BaseRequest) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _cluster(resolve: Resolve, request: web.BaseRequest) -> SimCluster:
    cluster = resolve(request)
    if cluster is None:
        raise drop(request)
    return cluster


def _auth_middleware(resolve: Resolve) -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        cluster = _cluster(resolve, request)
        given = request.headers.get("Authorization", "").encode()
        expected = f"Bearer {cluster.token}".encode()
        if not hmac.compare_digest(given, expected):
            return _status(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    return authenticate


@web.middleware
async def _status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Router errors (unknown path, wrong method) as `Status` objects, like the API server."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _status(404, "NotFound", "the server could not find the requested resource")
    except web.HTTPMethodNotAllowed:
        return _status(
            405, "MethodNotAllowed", f"the server does not allow this method ({request.method})"
        )


# --- the application ---------------------------------------------------------------------


def kube_app(resolve: Resolve, settings: WatchSettings | None = None) -> web.Application:
    """The Kubernetes API of every cluster `resolve` maps a request to."""
    watch = settings or WatchSettings()

    def gate_of(request: web.BaseRequest) -> Gate | None:
        cluster = resolve(request)
        return cluster.gate if cluster else None

    app = web.Application(
        middlewares=[availability_middleware(gate_of), _auth_middleware(resolve), _status_errors]
    )

    async def version(request: web.Request) -> web.Response:
        return _json(dict(discovery.VERSION))

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def api(request: web.Request) -> web.Response:
        cluster = _cluster(resolve, request)
        return _json(discovery.api_versions(f"127.0.0.1:{cluster.kube_port}"))

    def static(body: Callable[[], Json]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return _json(body())

        return handler

    def collection(resource: Resource) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            cluster = _cluster(resolve, request)
            query = request.query
            try:
                selection = parse_selection(
                    request.match_info.get("namespace"),
                    query.get("labelSelector", ""),
                    query.get("fieldSelector", ""),
                )
            except BadRequest as exc:
                return _status(400, "BadRequest", str(exc))
            if _flag(query.get("watch")):
                return await _watch(request, cluster, resource, selection, watch)
            store = cluster.kube
            items = [o for o in store.items(resource, selection.namespace) if selection.matches(o)]
            if _wants_table(request):
                body = render.to_table(
                    resource,
                    store.resource_version,
                    items,
                    now=cluster.clock(),
                    include_object=query.get("includeObject", "Metadata"),
                )
            else:
                body = render.to_list(resource, store.resource_version, items)
            return _json(body)

        return handler

    def item(resource: Resource) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            cluster = _cluster(resolve, request)
            namespace = request.match_info.get("namespace", "")
            name = request.match_info["name"]
            obj = cluster.kube.get(resource, namespace, name)
            if obj is None:
                details = {"name": name, "group": _group(resource), "kind": resource}
                return _status(404, "NotFound", f'{resource} "{name}" not found', details)
            if _wants_table(request):
                include = request.query.get("includeObject", "Metadata")
                body = render.to_table(
                    resource, None, [obj], now=cluster.clock(), include_object=include
                )
                return _json(body)
            return _json(render.to_json(obj))

        return handler

    core, disc = "/api/v1", f"/apis/{discovery.GROUP_VERSION}"
    routes = [
        web.get("/version", version),
        web.get("/healthz", health),
        web.get("/livez", health),
        web.get("/readyz", health),
        web.get("/api", api),
        web.get("/api/v1", static(discovery.core_v1)),
        web.get("/apis", static(discovery.api_groups)),
        web.get(f"/apis/{discovery.GROUP}", static(discovery.discovery_group)),
        web.get(disc, static(discovery.discovery_v1)),
        web.get(f"{core}/nodes", collection("nodes")),
        web.get(f"{core}/nodes/{{name}}", item("nodes")),
        web.get(f"{core}/services", collection("services")),
        web.get(f"{core}/namespaces/{{namespace}}/services", collection("services")),
        web.get(f"{core}/namespaces/{{namespace}}/services/{{name}}", item("services")),
        web.get(f"{disc}/endpointslices", collection("endpointslices")),
        web.get(f"{disc}/namespaces/{{namespace}}/endpointslices", collection("endpointslices")),
        web.get(f"{disc}/namespaces/{{namespace}}/endpointslices/{{name}}", item("endpointslices")),
    ]
    app.add_routes(routes)
    return app


def _group(resource: Resource) -> str:
    return discovery.GROUP if resource == "endpointslices" else ""


# --- watch -------------------------------------------------------------------------------


def _event(kind: str, obj: Json) -> bytes:
    return (_dumps({"type": kind, "object": obj}) + "\n").encode()


async def _watch(
    request: web.Request,
    cluster: SimCluster,
    resource: Resource,
    selection: Selection,
    settings: WatchSettings,
) -> web.StreamResponse:
    query = request.query
    store = cluster.kube
    try:
        timeout = float(settings.default_timeout)
        if "timeoutSeconds" in query:
            timeout = min(float(int(query["timeoutSeconds"])), MAX_WATCH_TIMEOUT)
    except ValueError:
        return _status(400, "BadRequest", f"invalid timeoutSeconds {query['timeoutSeconds']!r}")
    since = query.get("resourceVersion", "")
    table = _wants_table(request)
    include = query.get("includeObject", "Metadata")
    bookmarks = _flag(query.get("allowWatchBookmarks")) and not table
    backlog: Sequence[tuple[str, Obj]]
    if since in ("", "0"):
        start = store.resource_version
        backlog = [("ADDED", o) for o in store.items(resource, selection.namespace)]
    else:
        if not (since.isascii() and since.isdigit()):
            return _status(
                400,
                "BadRequest",
                f'resourceVersion: Invalid value: "{since}": must be a non-negative integer',
            )
        start = int(since)
        changes = store.changes_since(resource, start)
        if changes is None:
            oldest = store.oldest_resumable
            expired = render.status(410, "Expired", f"too old resource version: {start} ({oldest})")
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(_event("ERROR", expired))
            await response.write_eof()
            return response
        backlog = [(e.type, e.obj) for e in changes]

    def encode(kind: str, obj: Obj) -> bytes:
        if table:
            body = render.to_table(
                resource, None, [obj], now=cluster.clock(), include_object=include
            )
        else:
            body = render.to_json(obj)
        return _event(kind, body)

    queue: asyncio.Queue[tuple[str, Obj] | None] = asyncio.Queue()

    def on_event(event: Event) -> None:
        if event.resource == resource and event.resource_version > start:
            queue.put_nowait((event.type, event.obj))

    unsubscribe = store.subscribe(on_event)
    uncut = cluster.gate.add_stream(lambda: queue.put_nowait(None))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await response.prepare(request)
        for kind, obj in backlog:
            if selection.matches(obj):
                await response.write(encode(kind, obj))
        while (remaining := deadline - loop.time()) > 0:
            wait = min(remaining, settings.bookmark_interval) if bookmarks else remaining
            try:
                async with asyncio.timeout(wait):
                    change = await queue.get()
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    kind_name, api_version = render.KINDS[resource]
                    mark = {
                        "kind": kind_name,
                        "apiVersion": api_version,
                        "metadata": {"resourceVersion": str(store.resource_version)},
                    }
                    await response.write(_event("BOOKMARK", mark))
                continue
            if change is None or not await cluster.gate.admit():
                break
            if selection.matches(change[1]):
                await response.write(encode(*change))
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
    except ConnectionError:
        pass  # the client went away
    finally:
        unsubscribe()
        uncut()
    return response
