"""Drains, alerts and the bearer token, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mcobs.api.app import make_app
from mcobs.api.control import control_routes
from mcobs.catalog.memory import MemoryCatalog
from mcobs.model import CatalogSnapshot, HealthState, Scope
from tests.api.test_app import FakeHub
from tests.core.factories import report

NOW = 1010.0
TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def store() -> AsyncIterator[MemoryCatalog]:
    catalog = MemoryCatalog()
    await catalog.put(report("eu-west"))
    yield catalog
    await catalog.close()


async def client_for(store: MemoryCatalog, **options: Any) -> TestClient:  # type: ignore[type-arg]
    """A client of the API whose catalog snapshot is refreshed after every request."""
    current: list[CatalogSnapshot] = [await store.snapshot()]

    @web.middleware
    async def refresh(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        current[0] = await store.snapshot()
        return response  # type: ignore[no-any-return]

    app = make_app(FakeHub(), control_routes(store, lambda: current[0], lambda: NOW), **options)
    app.middlewares.append(refresh)
    return TestClient(TestServer(app))


async def test_drain_list_and_undrain(store: MemoryCatalog) -> None:
    client = await client_for(store, token=TOKEN)
    async with client:
        body = {
            "cluster": "eu-west",
            "service": "default/web",
            "reason": "bad deploy",
            "expires_in": 600,
            "by": "alice",
        }
        response = await client.post("/api/v1/drains", json=body, headers=AUTH)
        assert response.status == 201
        created = await response.json()
        assert created["scope"] == "eu-west/default/web" and created["expires_at"] == NOW + 600
        listing = await (await client.get("/api/v1/drains")).json()
        assert [d["scope"] for d in listing["drains"]] == ["eu-west/default/web"]
        assert "eu-west/default/web" in (await store.snapshot()).drains

        gone = await client.delete("/api/v1/drains/eu-west/default/web", headers=AUTH)
        assert gone.status == 200
        again = await client.delete("/api/v1/drains/eu-west/default/web", headers=AUTH)
        assert again.status == 404
        assert not (await store.snapshot()).drains


async def test_bad_drains_report_every_problem_and_change_nothing(store: MemoryCatalog) -> None:
    client = await client_for(store, token=TOKEN)
    async with client:
        response = await client.post(
            "/api/v1/drains",
            json={"cluster": "Bad Name", "service": "web", "expires_in": -5, "colour": "red"},
            headers=AUTH,
        )
        assert response.status == 400
        problems = (await response.json())["problems"]
        assert problems == [
            "colour: unknown field",
            "cluster: must be a cluster name (a DNS label)",
            "reason: say why, in 1..512 characters",
            "expires_in: seconds, 1..2592000",
        ]
        broken = await client.post("/api/v1/drains", data=b"{not json", headers=AUTH)
        assert broken.status == 400 and "not valid JSON" in (await broken.json())["error"]
        assert not (await store.snapshot()).drains


async def test_mutations_need_the_token(store: MemoryCatalog) -> None:
    client = await client_for(store, token=TOKEN)
    async with client:
        body = {"cluster": "eu-west", "reason": "x"}
        missing = await client.post("/api/v1/drains", json=body)
        assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await client.post(
            "/api/v1/drains", json=body, headers={"Authorization": "Bearer no"}
        )
        assert wrong.status == 401
        assert (await client.get("/api/v1/drains")).status == 200  # reads stay open
        assert not (await store.snapshot()).drains


async def test_without_a_token_mutations_are_disabled_unless_open(store: MemoryCatalog) -> None:
    client = await client_for(store)
    async with client:
        refused = await client.post("/api/v1/drains", json={"cluster": "eu-west", "reason": "x"})
        assert refused.status == 403
    client = await client_for(store, open_mutations=True)
    async with client:
        accepted = await client.post("/api/v1/drains", json={"cluster": "eu-west", "reason": "x"})
        assert accepted.status == 201


async def test_reads_can_be_protected(store: MemoryCatalog) -> None:
    client = await client_for(store, token=TOKEN, protect_reads=True)
    async with client:
        assert (await client.get("/api/v1/drains")).status == 401
        assert (await client.get("/api/v1/drains", headers=AUTH)).status == 200
        assert (await client.get("/healthz")).status == 200


def alertmanager(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": "mcobs",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": list(alerts),
    }


async def test_alertmanager_webhook_marks_and_clears_scopes(store: MemoryCatalog) -> None:
    client = await client_for(store, token=TOKEN)
    firing = {
        "status": "firing",
        "labels": {"alertname": "KubeAPIDown", "cluster": "eu-west", "severity": "critical"},
        "annotations": {"summary": "API down"},
        "startsAt": "2026-11-25T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "abc123",
    }
    warning = {
        "status": "firing",
        "labels": {
            "alertname": "Slow",
            "cluster": "eu-west",
            "namespace": "default",
            "service": "web",
            "severity": "warning",
        },
        "fingerprint": "def456",
    }
    stray = {"status": "firing", "labels": {"alertname": "NoCluster"}}
    async with client:
        response = await client.post(
            "/api/v1/alerts", json=alertmanager(firing, warning, stray), headers=AUTH
        )
        assert response.status == 200
        body = await response.json()
        assert body["firing"] == ["eu-west: KubeAPIDown", "eu-west/default/web: Slow"]
        assert body["ignored"] == ["alerts[2] NoCluster: no cluster label"]
        alerts = (await store.snapshot()).alerts
        assert alerts["abc123"].down and alerts["abc123"].scope == Scope("eu-west")
        assert not alerts["def456"].down

        resolved = {**firing, "status": "resolved", "endsAt": "2026-11-25T10:05:00Z"}
        await client.post("/api/v1/alerts", json=alertmanager(resolved), headers=AUTH)
        assert set((await store.snapshot()).alerts) == {"def456"}

        bad = await client.post("/api/v1/alerts", json={"version": "3"}, headers=AUTH)
        assert bad.status == 400
        assert (await bad.json())["problems"] == [
            "version must be \"4\", got '3'",
            "alerts must be a list",
        ]


def test_drained_state_is_a_state() -> None:
    assert not HealthState.DRAINED.serves
