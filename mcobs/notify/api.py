"""HTTP routes for the webhook outbox (aiohttp), to mount in the hub's API.

    GET  /api/v1/webhooks                            consumers (host only), counters, queue
    GET  /api/v1/webhooks/dead-letters?offset&limit  dead letters, newest first
    POST /api/v1/webhooks/dead-letters/{id}/retry    queue a dead letter again, due now

No response carries a secret or a whole target URL (its path or query may
hold a token): a consumer shows as its name, scheme and host.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from mcobs.notify.event import event_json, format_time, utc
from mcobs.notify.outbox import Outbox, UnknownConsumer
from mcobs.notify.records import Delivery
from mcobs.notify.store import OutboxUnavailable

MAX_PAGE: Final = 500
DEFAULT_PAGE: Final = 50


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else format_time(utc(seconds))


def dead_letter_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "consumer": delivery.consumer,
        "event": event_json(delivery.event),
        "attempts": delivery.attempts,
        "queued_at": _time(delivery.created_at),
        "last_attempt_at": _time(delivery.last_attempt_at),
        "last_result": delivery.last_result,
        "last_status": delivery.last_status,
        "dead_at": _time(delivery.dead_at),
        "reason": delivery.dead_reason,
    }


def _page_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) > maximum:
        raise web.HTTPBadRequest(reason=f"{name} must be an integer from 0 to {maximum}")
    return int(raw)


def webhook_routes(outbox: Outbox) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/api/v1/webhooks")
    async def webhooks(request: web.Request) -> web.Response:
        store_error = None
        pending: dict[str, int] = {}
        dead_total: int | None = None
        try:
            pending = dict(await outbox.pending())
            dead_total = (await outbox.dead_letters(0, 0)).total
        except OutboxUnavailable as error:
            store_error = str(error)
        consumers = []
        for consumer in outbox.consumers.values():
            retry = consumer.retry
            consumers.append(
                {
                    "name": consumer.name,
                    "scheme": urlsplit(consumer.url).scheme,
                    "host": consumer.host,
                    "events": list(consumer.events),
                    "format": consumer.format.value,
                    "timeout": consumer.timeout,
                    "max_attempts": retry.max_attempts,
                    "max_age": retry.max_age,
                    "deny_private": consumer.deny_private,
                    "pending": pending.get(consumer.name),
                    "attempts": dict(outbox.stats.counters(consumer.name)),
                    "failures": dict(outbox.stats.failures(consumer.name)),
                }
            )
        return web.json_response(
            {
                "consumers": consumers,
                "dead_letters": dead_total,
                "buffered_events": outbox.buffered,
                "events": dict(outbox.stats.events()),
                "store_error": store_error,
            }
        )

    @routes.get("/api/v1/webhooks/dead-letters")
    async def dead_letters(request: web.Request) -> web.Response:
        offset = _page_param(request, "offset", 0, 10**9)
        limit = _page_param(request, "limit", DEFAULT_PAGE, MAX_PAGE)
        try:
            page = await outbox.dead_letters(offset, limit)
        except OutboxUnavailable as error:
            return _error(503, str(error))
        return web.json_response(
            {
                "total": page.total,
                "offset": offset,
                "limit": limit,
                "items": [dead_letter_json(d) for d in page.items],
            }
        )

    @routes.post("/api/v1/webhooks/dead-letters/{id}/retry")
    async def retry(request: web.Request) -> web.Response:
        delivery_id = request.match_info["id"]
        try:
            revived = await outbox.retry_dead_letter(delivery_id)
        except UnknownConsumer as error:
            return _error(409, str(error))
        except OutboxUnavailable as error:
            return _error(503, str(error))
        if revived is None:
            return _error(404, f"no dead letter {delivery_id!r}")
        return web.json_response(
            {"id": revived.id, "status": "queued", "queued_at": _time(revived.created_at)},
            status=202,
        )

    return routes
