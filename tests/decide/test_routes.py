"""The events API over real HTTP: pages, filters, problems, the SSE stream, the leader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from mcobs.api.app import json_errors
from mcobs.decide.events import EventLog, LoggedEvent
from mcobs.decide.lease import Fence, Lease
from mcobs.decide.routes import event_routes
from mcobs.notify.event import Event, cluster_state_changed, service_failover
from tests.decide.conftest import Backend

T0 = 1_700_000_000.0
_rng = random.Random(3)

Client = TestClient  # type: ignore[type-arg]


def state(cluster: str, at: float = T0) -> Event:
    return cluster_state_changed(cluster, "healthy", "down", ["x"], clock=lambda: at, rng=_rng)


def moved(at: float = T0) -> Event:
    return service_failover(
        "default", "web", active=True, from_clusters=["us-east"], to_clusters=["eu-west"],
        clock=lambda: at, rng=_rng,
    )  # fmt: skip


class Api:
    def __init__(self, backend: Backend, client: Client, lease: Lease, fence: Fence) -> None:
        self.backend, self.client, self.lease, self.fence = backend, client, lease, fence

    async def append(self, *events: Event) -> None:
        await self.backend.log().append(events, fence=self.fence)

    async def get(self, path: str, **params: str | list[str]) -> tuple[int, dict[str, object]]:
        response = await self.client.get(path, params=_flat(params))
        return response.status, await response.json()


def _flat(params: dict[str, str | list[str]]) -> list[tuple[str, str]]:
    return [(k, x) for k, v in params.items() for x in ([v] if isinstance(v, str) else v)]


@pytest.fixture
async def api(backend: Backend) -> AsyncIterator[Api]:
    lease = backend.lease("hub-1")
    assert await lease.step()
    assert lease.fence is not None
    app = web.Application(middlewares=[json_errors])
    app.add_routes(event_routes(backend.log(), lease, keepalive=0.2))
    async with TestClient(TestServer(app)) as client:
        yield Api(backend, client, lease, lease.fence)


async def test_events_page_newest_first_with_a_cursor(api: Api) -> None:
    events = [state(f"c{i}", T0 + i) for i in range(5)]
    await api.append(*events)
    status, body = await api.get("/api/v1/events", limit="2")
    assert status == 200
    assert [e["data"]["cluster"] for e in body["events"]] == ["c4", "c3"]  # type: ignore[index, union-attr]
    assert body["events"][0] == {  # type: ignore[index]
        "id": events[4].id,
        "type": "cluster.state_changed",
        "timestamp": "2023-11-14T22:13:24.000000Z",
        "data": {"cluster": "c4", "from": "healthy", "to": "down", "reasons": ["x"]},
    }
    seen = []
    cursor = body["next_cursor"]
    while cursor:
        status, page = await api.get("/api/v1/events", limit="2", cursor=str(cursor))
        seen += [e["data"]["cluster"] for e in page["events"]]  # type: ignore[index, union-attr]
        cursor = page["next_cursor"]
    assert seen == ["c2", "c1", "c0"]


async def test_events_filter_by_type_cluster_service_and_time(api: Api) -> None:
    failover = moved(T0 + 5)
    await api.append(state("us-east", T0), failover, state("eu-west", T0 + 10))
    _, body = await api.get("/api/v1/events", type="service.failover", cluster="us-east")
    assert [e["id"] for e in body["events"]] == [failover.id]  # type: ignore[index, union-attr]
    _, body = await api.get("/api/v1/events", service="default/web")
    assert [e["id"] for e in body["events"]] == [failover.id]  # type: ignore[index, union-attr]
    _, body = await api.get("/api/v1/events", since="2023-11-14T22:13:22Z", until=str(T0 + 10))
    assert [e["id"] for e in body["events"]] == [failover.id]  # type: ignore[index, union-attr]
    _, body = await api.get("/api/v1/events", type=["cluster.state_changed", "service.failover"])
    assert len(body["events"]) == 3  # type: ignore[arg-type]


async def test_bad_parameters_are_all_reported(api: Api) -> None:
    status, body = await api.get(
        "/api/v1/events",
        type="cluster.exploded",
        limit="0",
        since="yesterday",
        service="web",
        cursor="page-2",
        colour="red",
    )
    assert status == 400
    problems = body["problems"]
    assert body["error"] == "invalid query"
    assert [p.split(":")[0] for p in problems] == [  # type: ignore[union-attr]
        "colour",
        "type",
        "service",
        "since",
        "limit",
        "cursor",
    ]


async def read_frame(response: ClientResponse) -> str:
    raw = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 3)
    return raw.decode()


async def next_event_frame(response: ClientResponse) -> dict[str, str]:
    while True:
        frame = await read_frame(response)
        if frame.startswith("id:"):
            lines = dict(line.split(": ", 1) for line in frame.strip().split("\n"))
            return lines


async def test_the_stream_sends_events_as_they_happen_and_resumes_after_a_drop(
    api: Api,
) -> None:
    async with api.client.get("/api/v1/events/stream") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert (await read_frame(response)).startswith("retry: 2000\n")
        first, second, third = state("eu-west"), moved(), state("us-east")
        await api.append(first)
        frame = await next_event_frame(response)
        assert frame["id"] == first.id
        assert frame["event"] == "cluster.state_changed"
        assert json.loads(frame["data"])["data"]["cluster"] == "eu-west"
    # The client is gone; two more events happen; it comes back with Last-Event-ID.
    await api.append(second, third)
    headers = {"Last-Event-ID": first.id}
    async with api.client.get("/api/v1/events/stream", headers=headers) as response:
        assert [(await next_event_frame(response))["id"] for _ in range(2)] == [
            second.id,
            third.id,
        ]


async def test_the_stream_filters_and_keeps_the_connection_alive(api: Api) -> None:
    params = {"type": "service.failover"}
    async with api.client.get("/api/v1/events/stream", params=params) as response:
        await read_frame(response)
        assert await read_frame(response) == ": keepalive\n\n"
        failover = moved()
        await api.append(state("eu-west"), failover)
        assert (await next_event_frame(response))["id"] == failover.id


async def test_the_stream_refuses_a_bad_last_event_id(api: Api) -> None:
    response = await api.client.get("/api/v1/events/stream", headers={"Last-Event-ID": "lol"})
    assert response.status == 400
    assert "Last-Event-ID" in (await response.json())["problems"][0]


async def test_leader_shows_who_holds_the_lease(api: Api) -> None:
    status, body = await api.get("/api/v1/leader")
    assert status == 200
    assert body == {
        "leader": {
            "holder": "hub-1",
            "token": api.fence.token,
            "since": "2023-11-14T22:13:20.000000Z",
        },
        "replica": {"holder": "hub-1", "is_leader": True},
    }
    await api.backend.expire()
    _, body = await api.get("/api/v1/leader")
    assert body["leader"] is None


class CountingLog:
    """An event log that counts its open followers (SSE connections being served)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.open = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.log, name)

    async def follow(
        self, after: str | None = None, *, idle: float = 1.0
    ) -> AsyncGenerator[LoggedEvent | None, None]:
        self.open += 1
        try:
            async with contextlib.aclosing(self.log.follow(after, idle=idle)) as items:
                async for item in items:
                    yield item
        finally:
            self.open -= 1


async def test_the_stream_ends_when_the_client_goes(backend: Backend) -> None:
    lease = backend.lease("hub-1")
    counting = CountingLog(backend.log())
    app = web.Application(middlewares=[json_errors])
    app.add_routes(event_routes(counting, lease, keepalive=0.2))  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        async with client.get("/api/v1/events/stream") as response:
            await read_frame(response)
            assert counting.open == 1
        for _ in range(300):
            if counting.open == 0:
                break
            await asyncio.sleep(0.01)
        assert counting.open == 0
