"""The HTTP API: health endpoints and the versioned JSON catalog API (aiohttp)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from mcobs.answer import ZonePlan
from mcobs.api.control import catalog_unavailable_as_503
from mcobs.api.render import cluster_json, service_json
from mcobs.explain import QTYPES, resolution_json, resolve
from mcobs.geo import IPAddress
from mcobs.model import CatalogSnapshot, ServiceKey
from mcobs.query import READ_ONLY_POST_PATHS

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HubView(Protocol):
    """What the API reads: the latest snapshot and the plan built from it."""

    @property
    def ready(self) -> bool: ...

    @property
    def snapshot(self) -> CatalogSnapshot: ...

    @property
    def plan(self) -> ZonePlan: ...

    @property
    def stale_after(self) -> float: ...

    def now(self) -> float: ...

    def locate(self, address: IPAddress) -> str | None:
        """The region of a client address (geo), or None."""
        ...


def error_json(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API errors as JSON bodies, and never a stack trace to the client."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or not request.path.startswith("/api/"):
            raise
        return error_json(error.status, error.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_json(500, "internal error")


MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bearer_auth(
    token: str | None, *, open_mutations: bool, protect_reads: bool = False
) -> Middleware:
    """Mutating `/api/` calls need `Authorization: Bearer <token>` (compared in
    constant time). Without a token they are refused, unless `open_mutations`
    (the loopback-only demo). `protect_reads` asks the token of reads too."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        mutating = request.method in MUTATING and request.path not in READ_ONLY_POST_PATHS
        if not mutating and not protect_reads:
            return await handler(request)
        if expected is None:
            if open_mutations or not mutating:
                return await handler(request)
            return error_json(403, "mutating calls are disabled: no API token is configured")
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            response = error_json(401, "missing or wrong bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="mcobs"'
            return response
        return await handler(request)

    return middleware


def _routes(hub: HubView) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/readyz")
    async def readyz(request: web.Request) -> web.Response:
        if hub.ready:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "waiting for the first catalog snapshot"}, status=503)

    @routes.get("/api/v1/clusters")
    async def clusters(request: web.Request) -> web.Response:
        now = hub.now()
        reports = sorted(hub.snapshot.reports.values(), key=lambda r: r.cluster)
        body: dict[str, Any] = {
            "catalog_version": hub.snapshot.version,
            "clusters": [cluster_json(r, now, hub.stale_after) for r in reports],
        }
        return web.json_response(body)

    @routes.get("/api/v1/services")
    async def services(request: web.Request) -> web.Response:
        plan = hub.plan
        return web.json_response(
            {
                "catalog_version": hub.snapshot.version,
                "zone": plan.view.origin,
                "services": [service_json(p) for p in plan.services.values()],
            }
        )

    @routes.get("/api/v1/services/{namespace}/{name}")
    async def service(request: web.Request) -> web.Response:
        key = ServiceKey(request.match_info["namespace"], request.match_info["name"])
        found = hub.plan.services.get(key)
        if found is None:
            return error_json(404, f"no exported service {key}")
        return web.json_response(service_json(found))

    @routes.get("/api/v1/resolve")
    async def resolve_route(request: web.Request) -> web.Response:
        query = request.query
        problems = []
        name = query.get("name", "")
        if not name or len(name) > 253:
            problems.append("name: a DNS name is required")
        qtype = query.get("type", "A").upper()
        if qtype not in QTYPES:
            problems.append(f"type: one of {', '.join(QTYPES)}")
        client = query.get("client")
        address = None
        if client:
            try:
                address = ipaddress.ip_address(client)
            except ValueError:
                problems.append("client: an IP address")
        if problems:
            return web.json_response(
                {"error": "; ".join(problems), "problems": problems}, status=400
            )
        region = hub.locate(address) if address is not None else None
        return web.json_response(resolution_json(resolve(hub.plan, name, qtype, region), client))

    return routes


def make_app(
    hub: HubView,
    extra: Iterable[web.AbstractRouteDef] = (),
    *,
    token: str | None = None,
    open_mutations: bool = False,
    protect_reads: bool = False,
) -> web.Application:
    app = web.Application(
        middlewares=[
            json_errors,
            bearer_auth(token, open_mutations=open_mutations, protect_reads=protect_reads),
            catalog_unavailable_as_503(),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app.add_routes(_routes(hub))
    app.add_routes(list(extra))
    return app
