"""`GET /metrics` for aiohttp, in the exposition format the scraper asks for."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def metrics_route(registry: CollectorRegistry) -> web.RouteDef:
    """A route serving `registry`: Prometheus text by default, OpenMetrics when asked."""

    async def metrics(request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        # A large fleet means many series; encoding them in a worker thread keeps the event
        # loop (and the DNS server on it) answering. Collectors only read immutable values.
        body = await asyncio.to_thread(encode, registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    return web.get("/metrics", metrics)
