"""The status page's routes: what a browser gets, and the first messages of its live stream."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from mcobs.api.app import make_app
from mcobs.decide.events import MemoryEventLog
from mcobs.decide.lease import LeaseBoard
from mcobs.model import CatalogSnapshot, Drain, Scope
from mcobs.notify.event import EVENT_TYPES
from mcobs.status import status_routes
from tests.status.fakes import DOWN, NOW, Hub, two_clusters

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def hub() -> Hub:
    return Hub(two_clusters())


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[Client]:
    events = MemoryEventLog(LeaseBoard())
    app = make_app(hub, status_routes(hub, events, poll=0.02, keepalive=0.2))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await events.close()


async def next_message(response: ClientResponse, limit: float = 2.0) -> str:
    async with asyncio.timeout(limit):
        return (await response.content.readuntil(b"\n\n")).decode()


def status_of(message: str) -> dict[str, Any]:
    lines = message.strip().split("\n")
    assert lines[0] == "event: status"
    assert lines[1].startswith("data: ")
    parsed: dict[str, Any] = json.loads(lines[1].removeprefix("data: "))
    return parsed


async def test_the_page_is_html_with_a_strict_policy_and_only_local_assets(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self';")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await response.text()
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, "no inline script"
    assert "style=" not in page
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert all(re.fullmatch(r"/status/[\w.]+\?v=[0-9a-f]{12}", link) for link in links), links
    assert {link.split("?")[0] for link in links} == {
        "/status/app.js",
        "/status/app.css",
        "/status/favicon.svg",
    }


async def test_assets_have_their_types_and_are_cached_for_good_only_by_version(
    client: Client,
) -> None:
    page = await (await client.get("/")).text()
    types = {
        "/status/app.js": "text/javascript; charset=utf-8",
        "/status/app.css": "text/css; charset=utf-8",
        "/status/favicon.svg": "image/svg+xml",
    }
    for link in re.findall(r'(?:src|href)="([^"]+)"', page):
        path = link.split("?")[0]
        response = await client.get(link)
        assert response.status == 200, link
        assert response.headers["Content-Type"] == types[path]
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self';")
        body = await response.text()
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in body
        unversioned = await client.get(path)
        assert unversioned.headers["Cache-Control"] == "no-cache"
        assert await unversioned.text() == body
    assert (await client.get("/status/other.js")).status == 404
    assert (await client.get("/status/..%2fstatus%2fapp.js")).status == 404


async def test_the_script_never_writes_markup() -> None:
    app = web.Application()
    app.add_routes(status_routes(Hub(two_clusters()), None))
    async with TestClient(TestServer(app)) as test_client:
        script = await (await test_client.get("/status/app.js")).text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


async def test_the_stream_starts_with_the_whole_state_in_the_api_shapes(
    client: Client, hub: Hub
) -> None:
    clusters = (await (await client.get("/api/v1/clusters")).json())["clusters"]
    services = (await (await client.get("/api/v1/services")).json())["services"]
    async with client.get("/api/v1/status/stream") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        assert (await next_message(response)).startswith("retry: ")
        state = status_of(await next_message(response))
    assert state["now"] == NOW
    assert state["ready"] is True
    assert state["zone"] == "global.example.com."
    assert state["catalog_version"] == 7
    assert [{k: v for k, v in c.items() if k != "answer_health"} for c in state["clusters"]] == (
        clusters
    )
    assert [c["answer_health"]["state"] for c in state["clusters"]] == ["healthy", "healthy"]
    assert [{k: v for k, v in s.items() if k != "strategy"} for s in state["services"]] == services
    assert [s["strategy"] for s in state["services"]] == ["weighted"]
    assert state["events"] == {"types": list(EVENT_TYPES)}


async def test_the_stream_sends_the_new_state_when_the_plan_changes(
    client: Client, hub: Hub
) -> None:
    async with client.get("/api/v1/status/stream") as response:
        await next_message(response)
        first = status_of(await next_message(response))
        assert first["services"][0]["clusters_in_answer"] == ["eu-west", "us-east"]
        hub.set(two_clusters(us_east=DOWN))
        changed = status_of(await next_message(response, limit=1.0))
    east = next(c for c in changed["clusters"] if c["name"] == "us-east")
    assert east["answer_health"] == {
        "state": "down",
        "score": 0.0,
        "reasons": ["API unreachable: connection refused"],
    }
    assert changed["services"][0]["clusters_in_answer"] == ["eu-west"]


async def test_an_unchanged_plan_sends_only_keepalives(client: Client) -> None:
    async with client.get("/api/v1/status/stream") as response:
        await next_message(response)
        await next_message(response)
        assert await next_message(response, limit=1.0) == ": keepalive\n\n"


async def test_a_drained_cluster_shows_drained_with_the_drain_reason(hub: Hub) -> None:
    drained = two_clusters()
    drains = {"us-east": Drain(Scope("us-east"), "kernel upgrade", created_at=NOW, by="ana")}
    hub.set(CatalogSnapshot(drained.reports, drained.version, drains=drains))
    app = web.Application()
    app.add_routes(status_routes(hub, None, poll=0.02))
    async with (
        TestClient(TestServer(app)) as test_client,
        test_client.get("/api/v1/status/stream") as response,
    ):
        await next_message(response)
        state = status_of(await next_message(response))
    east = next(c for c in state["clusters"] if c["name"] == "us-east")
    assert east["health"]["state"] == "healthy"
    assert east["answer_health"]["state"] == "drained"
    assert east["answer_health"]["reasons"] == ["drained by ana: kernel upgrade"]
    assert state["events"] is None


async def test_many_open_pages_share_one_rendering(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mcobs.status.snapshot as module

    calls = 0
    render = module.status_json

    def counting(*args: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return render(*args)

    monkeypatch.setattr(module, "status_json", counting)
    streams = [await client.get("/api/v1/status/stream") for _ in range(5)]
    for response in streams:
        await next_message(response)
        assert status_of(await next_message(response))["clusters"]
        response.close()
    assert calls == 1


async def test_streams_end_when_the_hub_is_closing(hub: Hub) -> None:
    closing = asyncio.Event()
    app = web.Application()
    app.add_routes(status_routes(hub, None, poll=0.02, closing=closing))
    async with (
        TestClient(TestServer(app)) as test_client,
        test_client.get("/api/v1/status/stream") as response,
    ):
        await next_message(response)
        await next_message(response)
        closing.set()
        async with asyncio.timeout(1.0):
            assert await response.content.read() == b""
