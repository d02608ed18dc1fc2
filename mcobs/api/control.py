"""Mutating API: drains by people, alerts from Alertmanager (aiohttp).

Every request body is validated as a whole and every problem is reported; an
invalid request changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mcobs.alerts import PayloadError, parse_webhook
from mcobs.catalog.store import CatalogStore, CatalogUnavailable
from mcobs.model import Drain, Scope, ServiceKey

log = logging.getLogger(__name__)

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_DRAIN_SECONDS = 30 * 86400
MAX_REASON = 512


def _problem(status: int, problems: list[str]) -> web.Response:
    return web.json_response({"error": "; ".join(problems), "problems": problems}, status=status)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, LookupError, RecursionError):
        # LookupError: an unknown charset; RecursionError: absurdly deep nesting.
        raise web.HTTPBadRequest(reason="body is not valid JSON") from None


def parse_scope(cluster: Any, service: Any, problems: list[str]) -> Scope | None:
    if not isinstance(cluster, str) or not _LABEL.fullmatch(cluster):
        problems.append("cluster: must be a cluster name (a DNS label)")
        return None
    if service is None:
        return Scope(cluster)
    parts = service.split("/") if isinstance(service, str) else []
    if len(parts) != 2 or not all(_LABEL.fullmatch(p) for p in parts):
        problems.append("service: must be namespace/name")
        return None
    return Scope(cluster, ServiceKey(parts[0], parts[1]))


def parse_drain(body: Any, now: float) -> tuple[Drain | None, list[str]]:
    """A drain from a request body, or every problem with it."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return None, ["body must be a JSON object"]
    unknown = sorted(set(body) - {"cluster", "service", "reason", "expires_in", "by"})
    problems += [f"{key}: unknown field" for key in unknown]
    scope = parse_scope(body.get("cluster"), body.get("service"), problems)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        problems.append(f"reason: say why, in 1..{MAX_REASON} characters")
    expires_in = body.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not 0 < expires_in <= MAX_DRAIN_SECONDS
    ):
        problems.append(f"expires_in: seconds, 1..{MAX_DRAIN_SECONDS}")
    by = body.get("by", "")
    if not isinstance(by, str) or len(by) > 128:
        problems.append("by: a name of at most 128 characters")
    if problems or scope is None:
        return None, problems
    assert isinstance(reason, str) and isinstance(by, str)
    expires_at = now + float(expires_in) if expires_in is not None else None
    return Drain(scope, reason.strip(), created_at=now, expires_at=expires_at, by=by), []


def drain_json(drain: Drain) -> dict[str, Any]:
    service = drain.scope.service
    return {
        "scope": str(drain.scope),
        "cluster": drain.scope.cluster,
        "service": str(service) if service else None,
        "reason": drain.reason,
        "by": drain.by,
        "created_at": drain.created_at,
        "expires_at": drain.expires_at,
    }


def control_routes(
    store: CatalogStore,
    snapshot: Callable[[], Any],
    clock: Callable[[], float],
    down_severities: frozenset[str] = frozenset({"critical"}),
) -> list[web.RouteDef]:
    """Routes for drains and alerts; `snapshot()` returns the current CatalogSnapshot."""

    async def list_drains(request: web.Request) -> web.Response:
        now = clock()
        drains = [d for d in snapshot().drains.values() if d.active(now)]
        return web.json_response({"drains": [drain_json(d) for d in sorted(drains, key=str)]})

    async def add_drain(request: web.Request) -> web.Response:
        drain, problems = parse_drain(await _json_body(request), clock())
        if drain is None:
            return _problem(400, problems)
        await store.put_drain(drain)
        log.warning("drained %s by %s: %s", drain.scope, drain.by or "-", drain.reason)
        body = drain_json(drain)
        if drain.scope.cluster not in snapshot().reports:
            body["warnings"] = [f"cluster {drain.scope.cluster} is not in the catalog (yet)"]
        return web.json_response(body, status=201)

    async def remove_drain(request: web.Request) -> web.Response:
        info = request.match_info
        service = f"{info['namespace']}/{info['name']}" if "name" in info else None
        problems: list[str] = []
        scope = parse_scope(info["cluster"], service, problems)
        if scope is None:
            return _problem(400, problems)
        if not await store.remove_drain(scope):
            return _problem(404, [f"{scope} is not drained"])
        log.warning("undrained %s", scope)
        return web.json_response({"undrained": str(scope)})

    async def receive_alerts(request: web.Request) -> web.Response:
        try:
            batch = parse_webhook(await _json_body(request), clock(), down_severities)
        except PayloadError as error:
            return _problem(400, list(error.problems))
        for alert in batch.firing:
            await store.put_alert(alert)
        for fingerprint in batch.resolved:
            await store.remove_alert(fingerprint)
        if batch.firing or batch.resolved:
            log.info(
                "alerts: %d firing, %d resolved, %d ignored",
                len(batch.firing),
                len(batch.resolved),
                len(batch.ignored),
            )
        return web.json_response(
            {
                "firing": [str(a.scope) + ": " + a.name for a in batch.firing],
                "resolved": len(batch.resolved),
                "ignored": list(batch.ignored),
            }
        )

    async def list_alerts(request: web.Request) -> web.Response:
        now = clock()
        return web.json_response(
            {
                "alerts": [
                    {
                        "fingerprint": a.fingerprint,
                        "scope": str(a.scope),
                        "name": a.name,
                        "severity": a.severity,
                        "effect": "down" if a.down else "degraded",
                        "starts_at": a.starts_at,
                        "ends_at": a.ends_at,
                        "summary": a.summary,
                    }
                    for a in sorted(snapshot().alerts.values(), key=lambda a: a.fingerprint)
                    if a.active(now)
                ]
            }
        )

    return [
        web.get("/api/v1/drains", list_drains),
        web.post("/api/v1/drains", add_drain),
        web.delete("/api/v1/drains/{cluster}", remove_drain),
        web.delete("/api/v1/drains/{cluster}/{namespace}/{name}", remove_drain),
        web.get("/api/v1/alerts", list_alerts),
        web.post("/api/v1/alerts", receive_alerts),
    ]


def catalog_unavailable_as_503() -> Middleware:
    """Middleware: a write the catalog could not take is a 503, not a 500."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except CatalogUnavailable as error:
            log.warning("%s %s: catalog unavailable: %s", request.method, request.path, error)
            return _problem(503, ["catalog unavailable; try again"])
        return response

    return middleware
