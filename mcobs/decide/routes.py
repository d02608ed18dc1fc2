"""HTTP routes of the decision log: pages, a live stream (SSE), and the leader.

    GET /api/v1/events          ?type=&cluster=&service=ns/name&since=&until=&limit=&cursor=
    GET /api/v1/events/stream   text/event-stream; ?type=&cluster=&service=; Last-Event-ID
    GET /api/v1/leader

A factory over its dependencies, like the rest of the API: mount the list it
returns with `make_app(hub, extra_routes)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from mcobs.decide.events import EventLog, EventLogUnavailable, LoggedEvent
from mcobs.decide.lease import Lease
from mcobs.decide.query import STREAM_PARAMS, parse_event_query
from mcobs.notify.event import event_json, format_time, utc

log = logging.getLogger(__name__)

KEEPALIVE: Final = 15.0
RETRY_MS: Final = 2000
"""What SSE clients wait before reconnecting (they resume with Last-Event-ID)."""


def _problems(problems: tuple[str, ...]) -> web.Response:
    return web.json_response({"error": "invalid query", "problems": list(problems)}, status=400)


def _unavailable(error: Exception) -> web.Response:
    return web.json_response({"error": f"event log unavailable: {error}"}, status=503)


def sse_frame(item: LoggedEvent) -> bytes:
    """One server-sent event: `id` = event id, `event` = type, `data` = the event JSON."""
    data = json.dumps(event_json(item.event), separators=(",", ":"), ensure_ascii=False)
    return f"id: {item.event.id}\nevent: {item.event.type}\ndata: {data}\n\n".encode()


def event_routes(
    events: EventLog,
    lease: Lease,
    *,
    keepalive: float = KEEPALIVE,
    clock: Callable[[], float] = time.monotonic,
) -> list[web.RouteDef]:
    """Routes over `events` (any replica can serve them) and `lease` (for /leader)."""

    async def page(request: web.Request) -> web.Response:
        parsed = parse_event_query(request.query.items())
        if parsed.problems:
            return _problems(parsed.problems)
        try:
            found = await events.read(parsed.query)
        except EventLogUnavailable as error:
            return _unavailable(error)
        body: dict[str, Any] = {
            "events": [event_json(item.event) for item in found.events],
            "next_cursor": found.next_cursor,
        }
        return web.json_response(body)

    async def stream(request: web.Request) -> web.StreamResponse:
        parsed = parse_event_query(request.query.items(), allowed=STREAM_PARAMS)
        if parsed.problems:
            return _problems(parsed.problems)
        last = request.headers.get("Last-Event-ID") or parsed.last_event_id
        try:
            after = await events.resume_point(last.strip()) if last else None
        except ValueError as error:
            return _problems((f"Last-Event-ID: {error}",))
        except EventLogUnavailable as error:
            return _unavailable(error)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        query = parsed.query
        try:
            await response.write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
            written = clock()
            idle = min(1.0, keepalive)
            async with contextlib.aclosing(events.follow(after, idle=idle)) as items:
                async for item in items:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    if item is not None and query.matches(item.event):
                        await response.write(sse_frame(item))
                        written = clock()
                    elif clock() - written >= keepalive:
                        await response.write(b": keepalive\n\n")
                        written = clock()
        except (ConnectionError, EventLogUnavailable) as error:
            log.debug("event stream ended: %s", error)
        return response

    async def leader(request: web.Request) -> web.Response:
        try:
            info = await lease.current()
        except Exception as error:
            return web.json_response({"error": f"lease unavailable: {error}"}, status=503)
        held = (
            None
            if info is None
            else {"holder": info.holder, "token": info.token, "since": format_time(utc(info.since))}
        )
        return web.json_response(
            {"leader": held, "replica": {"holder": lease.holder, "is_leader": lease.is_leader}}
        )

    return [
        web.get("/api/v1/events", page),
        web.get("/api/v1/events/stream", stream),
        web.get("/api/v1/leader", leader),
    ]
