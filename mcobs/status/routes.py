"""HTTP routes of the status page: the page, its static assets, and its live stream.

    GET /                        the page (HTML)
    GET /status/app.js           its script; /status/app.css, /status/favicon.svg
    GET /api/v1/status/stream    text/event-stream of `status` snapshots

Every response of the page carries a strict Content-Security-Policy: the page
loads nothing but these files and talks to nothing but this hub. The page links
its assets with a content hash (`?v=`), so they are cached for good, while the
page itself is revalidated on every load.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final

from aiohttp import web

from mcobs.api.app import HubView
from mcobs.decide.events import EventLog
from mcobs.notify.event import EVENT_TYPES
from mcobs.status.snapshot import StatusFrames

log = logging.getLogger(__name__)

POLL: Final = 0.25
"""Seconds between two looks of a stream at the hub's plan (an identity check)."""
KEEPALIVE: Final = 15.0
RETRY_MS: Final = 1000
"""What the page's EventSource waits before reconnecting."""

CSP: Final = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"

_ASSETS: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    version: str
    """The first 12 hex digits of the body's SHA-256."""


def load_assets() -> tuple[bytes, dict[str, Asset]]:
    """The page (asset links filled in with their versions) and the assets, from package data."""
    folder = resources.files("mcobs.status").joinpath("static")
    assets = {}
    for name, content_type in _ASSETS.items():
        body = folder.joinpath(name).read_bytes()
        assets[name] = Asset(body, content_type, hashlib.sha256(body).hexdigest()[:12])
    page = folder.joinpath("index.html").read_text(encoding="utf-8")
    for name, asset in assets.items():
        page = page.replace("{{" + name + "}}", f"/status/{name}?v={asset.version}")
    return page.encode(), assets


def status_routes(
    hub: HubView,
    events: EventLog | None,
    *,
    poll: float = POLL,
    keepalive: float = KEEPALIVE,
    closing: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[web.RouteDef]:
    """The status page over `hub`. With `events` (the hub's event log, mounted at
    `/api/v1/events`) the page also lists recent decisions; without, it says so.

    Open streams end within `poll` seconds of their client going away, or of
    `closing` being set: set it before the server shuts down, which otherwise
    waits for every open page (aiohttp's `shutdown_timeout`)."""
    page_body, assets = load_assets()
    frames = StatusFrames(hub, tuple(EVENT_TYPES) if events is not None else None)

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            body=page_body,
            content_type="text/html",
            charset="utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": REVALIDATE},
        )

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        cache = IMMUTABLE if request.query.get("v") == found.version else REVALIDATE
        return web.Response(
            body=found.body,
            headers={
                **SECURITY_HEADERS,
                "Content-Type": found.content_type,
                "Cache-Control": cache,
            },
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                **SECURITY_HEADERS,
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        sent = None
        try:
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            written = clock()
            while True:
                frame = frames.current()
                if frame is not sent:
                    await response.write(frame.sse(hub.now()))
                    sent, written = frame, clock()
                elif clock() - written >= keepalive:
                    await response.write(b": keepalive\n\n")
                    written = clock()
                await asyncio.sleep(poll)
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                if closing is not None and closing.is_set():
                    break
        except ConnectionError as error:
            log.debug("status stream ended: %s", error)
        return response

    return [
        web.get("/", page),
        web.get("/status/{name}", asset),
        web.get("/api/v1/status/stream", stream),
    ]
