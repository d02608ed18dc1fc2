"""The webhook API and metrics as an operator sees them; secrets never show."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest

from mcobs.notify.api import webhook_routes
from mcobs.notify.memory import MemoryOutboxStore
from mcobs.notify.outbox import Outbox
from mcobs.notify.redis import RedisOutboxStore
from mcobs.notify.retry import RetryPolicy
from mcobs.notify.stats import DeliveryStats
from tests.notify.conftest import SECRET, Clock, Receiver, Reply, consumer, down_event
from tests.notify.test_delivery import drive
from tests.redis_server import RedisServer

TOKEN = "T0KEN-in-the-path"

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def outbox(
    receiver: Receiver, clock: Clock, registry: CollectorRegistry
) -> AsyncIterator[Outbox]:
    outbox = Outbox(
        MemoryOutboxStore(),
        [
            consumer(f"{receiver.url}/{TOKEN}?key={TOKEN}", "pager",
                     retry=RetryPolicy(max_attempts=2)),
            consumer("https://hooks.example.com:8443/x", "audit", events=("service.*",)),
        ],
        clock=clock,
        rng=random.Random(1),
        stats=DeliveryStats(registry),
    )  # fmt: skip
    yield outbox
    await outbox.close()


@pytest.fixture
async def client(outbox: Outbox) -> AsyncIterator[Client]:
    app = web.Application()
    app.add_routes(webhook_routes(outbox))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _dead_letter(outbox: Outbox, receiver: Receiver, clock: Clock) -> str:
    receiver.default = Reply(500)
    event = down_event(clock, random.Random(2))
    await outbox.enqueue(event)
    await drive(outbox, clock)
    receiver.default = Reply(200)
    return f"{event.id}:pager"


async def test_consumers_show_host_counters_and_queue_but_no_secret(
    client: Client, outbox: Outbox, receiver: Receiver, clock: Clock
) -> None:
    await outbox.enqueue(down_event(clock, random.Random(3)))
    await outbox.run_once()
    response = await client.get("/api/v1/webhooks")
    assert response.status == 200
    text = await response.text()
    body = await response.json()
    pager, audit = body["consumers"]
    assert pager["name"] == "pager"
    assert pager["host"] == receiver.url.split("/")[2]
    assert pager["scheme"] == "http"
    assert pager["attempts"] == {"delivered": 1, "retried": 0, "failed": 0, "dead_lettered": 0}
    assert pager["pending"] == 0
    assert audit["host"] == "hooks.example.com:8443"
    assert audit["events"] == ["service.*"]
    assert body["dead_letters"] == 0
    assert body["events"] == {"cluster.state_changed": 1}
    assert body["store_error"] is None
    for hidden in (SECRET, SECRET.removeprefix("whsec_"), TOKEN):
        assert hidden not in text


async def test_dead_letters_are_listed_and_can_be_retried(
    client: Client, outbox: Outbox, receiver: Receiver, clock: Clock
) -> None:
    delivery_id = await _dead_letter(outbox, receiver, clock)
    page = await (await client.get("/api/v1/webhooks/dead-letters?limit=10")).json()
    assert page["total"] == 1
    (item,) = page["items"]
    assert item["id"] == delivery_id
    assert item["consumer"] == "pager"
    assert item["attempts"] == 2
    assert item["reason"] == "2 attempts failed, the last: HTTP 500"
    assert item["last_status"] == 500
    assert item["event"]["type"] == "cluster.state_changed"
    assert item["dead_at"].endswith("Z")

    retried = await client.post(f"/api/v1/webhooks/dead-letters/{delivery_id}/retry")
    assert retried.status == 202
    assert (await retried.json())["status"] == "queued"
    await drive(outbox, clock)
    assert receiver.received[-1].status == 200
    assert (await client.get("/api/v1/webhooks/dead-letters")).status == 200
    again = await client.post(f"/api/v1/webhooks/dead-letters/{delivery_id}/retry")
    assert again.status == 404
    assert "no dead letter" in (await again.json())["error"]
    unknown = await client.post("/api/v1/webhooks/dead-letters/evt_x:nobody/retry")
    assert unknown.status == 409


@pytest.mark.parametrize("query", ["limit=9999", "offset=-1", "limit=ten"])
async def test_bad_paging_is_refused(client: Client, query: str) -> None:
    response = await client.get(f"/api/v1/webhooks/dead-letters?{query}")
    assert response.status == 400


async def test_metrics_count_results_by_consumer_and_hold_no_secret(
    outbox: Outbox, receiver: Receiver, clock: Clock, registry: CollectorRegistry
) -> None:
    await _dead_letter(outbox, receiver, clock)
    await outbox.enqueue(down_event(clock, random.Random(4), "us-east"))
    await drive(outbox, clock)
    text = generate_latest(registry).decode()
    assert 'mcobs_webhook_deliveries_total{consumer="pager",result="delivered"} 1.0' in text
    assert 'mcobs_webhook_deliveries_total{consumer="pager",result="retried"} 1.0' in text
    assert 'mcobs_webhook_deliveries_total{consumer="pager",result="dead_lettered"} 1.0' in text
    assert 'mcobs_webhook_deliveries_total{consumer="audit",result="delivered"} 0.0' in text
    assert 'mcobs_webhook_attempt_failures_total{consumer="pager",kind="status"} 2.0' in text
    assert 'mcobs_webhook_events_total{type="cluster.state_changed"} 2.0' in text
    assert "mcobs_webhook_attempt_duration_seconds_bucket" in text
    for hidden in (SECRET, SECRET.removeprefix("whsec_"), TOKEN, "127.0.0.1", "hooks.example"):
        assert hidden not in text


async def test_logs_never_show_the_secret_or_the_url(
    outbox: Outbox, receiver: Receiver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.reply(Reply(302, {"Location": f"/{TOKEN}"}), Reply(503))
    await outbox.enqueue(down_event(clock, random.Random(5)))
    await drive(outbox, clock)
    await _dead_letter(outbox, receiver, clock)
    assert "dead-lettered" in caplog.text
    assert "HTTP 302 redirect (not followed)" in caplog.text
    for hidden in (SECRET, SECRET.removeprefix("whsec_"), TOKEN):
        assert hidden not in caplog.text


async def test_an_unreachable_store_is_reported_not_hidden(
    own_redis_server: RedisServer, receiver: Receiver
) -> None:
    store = RedisOutboxStore.from_url(own_redis_server.url, prefix="api", timeout=0.5)
    outbox = Outbox(store, [consumer(receiver.url)])
    app = web.Application()
    app.add_routes(webhook_routes(outbox))
    own_redis_server.stop()
    try:
        async with TestClient(TestServer(app)) as client:
            body = await (await client.get("/api/v1/webhooks")).json()
            assert body["consumers"][0]["pending"] is None
            assert body["store_error"].startswith("redis ")
            assert (await client.get("/api/v1/webhooks/dead-letters")).status == 503
            retry = await client.post("/api/v1/webhooks/dead-letters/evt_x:pager/retry")
            assert retry.status == 503
    finally:
        await outbox.close()
        await store.close()
