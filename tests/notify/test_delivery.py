"""Delivery as a consumer sees it: a real HTTP server, a fake clock, the memory store."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from email.utils import format_datetime

import pytest

from mcobs.notify.consumer import Consumer
from mcobs.notify.event import cluster_state_changed, encode_event, service_failover, utc
from mcobs.notify.memory import MemoryOutboxStore
from mcobs.notify.outbox import Outbox, UnknownConsumer
from mcobs.notify.payloads import PayloadFormat
from mcobs.notify.retry import RetryPolicy
from tests.notify.conftest import Clock, Receiver, Reply, consumer, down_event

OutboxFactory = Callable[..., Outbox]


@pytest.fixture
async def make_outbox(clock: Clock) -> AsyncIterator[OutboxFactory]:
    made: list[Outbox] = []

    def make(*consumers: Consumer, store: MemoryOutboxStore | None = None) -> Outbox:
        outbox = Outbox(
            store if store is not None else MemoryOutboxStore(),
            consumers,
            clock=clock,
            rng=random.Random(42),
        )
        made.append(outbox)
        return outbox

    yield make
    for outbox in made:
        await outbox.close()


async def drive(outbox: Outbox, clock: Clock, *, within: float = 3600.0) -> None:
    """Run the outbox while fake time jumps to each next due delivery, up to `within` seconds."""
    end = clock.now + within
    while True:
        next_at = await outbox.run_once()
        if next_at is None or next_at > end:
            return
        clock.now = max(clock.now, next_at)


def _timestamps(receiver: Receiver) -> list[int]:
    return [int(r.headers["webhook-timestamp"]) for r in receiver.received]


async def test_an_event_reaches_every_subscribed_consumer_signed(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    outbox = make_outbox(
        consumer(receiver.url, "pager", events=("cluster.*",)),
        consumer(receiver.url, "audit", events=("service.failover",)),
    )
    event = down_event(clock, random.Random(1))
    await outbox.enqueue(event)
    assert await outbox.pending() == {"pager": 1, "audit": 0}
    await drive(outbox, clock)

    (request,) = receiver.received
    assert request.body == encode_event(event)
    assert request.headers["webhook-id"] == event.id
    assert request.headers["Content-Type"] == "application/json"
    assert receiver.verified_events() == [json.loads(encode_event(event))]
    assert outbox.stats.counters("pager")["delivered"] == 1
    assert outbox.stats.counters("audit")["delivered"] == 0
    assert await outbox.pending() == {"pager": 0, "audit": 0}


async def test_failures_are_retried_with_growing_jittered_backoff(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    receiver.fail(4, status=503)
    outbox = make_outbox(consumer(receiver.url, retry=RetryPolicy(backoff_base=10.0)))
    event = down_event(clock, random.Random(2))
    await outbox.enqueue(event)
    await drive(outbox, clock)

    assert [r.status for r in receiver.received] == [503, 503, 503, 503, 200]
    assert {r.webhook_id for r in receiver.received} == {event.id}
    assert len({r.body for r in receiver.received}) == 1
    gaps = [b - a for a, b in zip(_timestamps(receiver), _timestamps(receiver)[1:], strict=False)]
    for attempt, gap in enumerate(gaps, start=1):
        assert 0 <= gap <= 10 * 2 ** (attempt - 1)  # full jitter under the exponential ceiling
    assert receiver.verified_events()[0]["id"] == event.id
    assert dict(outbox.stats.counters("pager")) == {
        "delivered": 1,
        "retried": 4,
        "failed": 0,
        "dead_lettered": 0,
    }
    assert outbox.stats.failures("pager") == {"status": 4}


@pytest.mark.parametrize("as_date", [False, True])
async def test_retry_after_is_honoured(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory, as_date: bool
) -> None:
    wait = format_datetime(utc(clock.now + 120), usegmt=True) if as_date else "120"
    receiver.reply(Reply(429, {"Retry-After": wait}))
    outbox = make_outbox(consumer(receiver.url, retry=RetryPolicy(backoff_base=1.0)))
    await outbox.enqueue(down_event(clock, random.Random(3)))
    await drive(outbox, clock)

    assert [r.status for r in receiver.received] == [429, 200]
    first, second = _timestamps(receiver)
    assert second - first >= 120


async def test_redirects_are_not_followed_and_count_as_failures(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    receiver.reply(Reply(307, {"Location": "/elsewhere"}))
    outbox = make_outbox(consumer(receiver.url))
    await outbox.enqueue(down_event(clock, random.Random(4)))
    await outbox.run_once()

    (request,) = receiver.received  # nothing was sent to /elsewhere
    assert request.status == 307
    assert outbox.stats.failures("pager") == {"redirect": 1}
    assert outbox.stats.counters("pager")["retried"] == 1
    await drive(outbox, clock)
    assert [r.status for r in receiver.received] == [307, 200]


async def test_a_slow_consumer_times_out_and_is_retried(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    receiver.reply(Reply(hang=True))
    outbox = make_outbox(consumer(receiver.url, timeout=0.2))
    await outbox.enqueue(down_event(clock, random.Random(5)))
    await outbox.run_once()

    assert outbox.stats.failures("pager") == {"timeout": 1}
    (dead_or_pending,) = (await outbox.pending()).values()
    assert dead_or_pending == 1
    await drive(outbox, clock)
    assert outbox.stats.counters("pager")["delivered"] == 1


async def test_410_gone_gives_up_at_once(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    receiver.fail(1, status=410)
    outbox = make_outbox(consumer(receiver.url))
    await outbox.enqueue(down_event(clock, random.Random(6)))
    await drive(outbox, clock)

    assert len(receiver.received) == 1
    page = await outbox.dead_letters()
    assert [d.dead_reason for d in page.items] == ["HTTP 410 Gone: the consumer asked to stop"]
    assert outbox.stats.counters("pager")["failed"] == 1


async def test_a_spent_retry_budget_dead_letters_and_a_retry_revives_it(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    receiver.default = Reply(500)
    outbox = make_outbox(consumer(receiver.url, retry=RetryPolicy(max_attempts=3)))
    event = down_event(clock, random.Random(7))
    await outbox.enqueue(event)
    await drive(outbox, clock)

    assert len(receiver.received) == 3
    (dead,) = (await outbox.dead_letters()).items
    assert dead.event == event
    assert dead.attempts == 3
    assert dead.dead_reason == "3 attempts failed, the last: HTTP 500"
    assert outbox.stats.counters("pager")["dead_lettered"] == 1

    receiver.default = Reply(200)
    revived = await outbox.retry_dead_letter(dead.id)
    assert revived is not None and revived.attempts == 0
    await drive(outbox, clock)
    assert [r.status for r in receiver.received] == [500, 500, 500, 200]
    assert receiver.delivered[0].webhook_id == event.id
    assert (await outbox.dead_letters()).total == 0
    assert await outbox.retry_dead_letter(dead.id) is None
    with pytest.raises(UnknownConsumer):
        await outbox.retry_dead_letter(f"{event.id}:nobody")


async def test_max_age_bounds_retries_in_time(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    receiver.default = Reply(503)
    policy = RetryPolicy(max_age=600.0, backoff_base=30.0, backoff_cap=60.0)
    outbox = make_outbox(consumer(receiver.url, retry=policy))
    start = clock.now
    await outbox.enqueue(down_event(clock, random.Random(8)))
    await drive(outbox, clock)

    assert all(t <= start + 600 for t in _timestamps(receiver))
    (dead,) = (await outbox.dead_letters()).items
    assert dead.dead_reason is not None
    assert dead.dead_reason.startswith("retry budget of 10m spent after")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_deny_private_refuses_a_loopback_target_with_a_clear_reason(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory, host: str
) -> None:
    url = receiver.url.replace("127.0.0.1", host)
    outbox = make_outbox(consumer(url, deny_private=True))
    await outbox.enqueue(down_event(clock, random.Random(9)))
    await drive(outbox, clock)

    assert receiver.received == []
    (dead,) = (await outbox.dead_letters()).items
    if host == "localhost":
        assert dead.dead_reason is not None
        assert dead.dead_reason.startswith("refused: localhost resolves to ")
        assert dead.dead_reason.endswith("(loopback), denied by deny_private")
    else:
        assert dead.dead_reason == "refused: 127.0.0.1 (loopback) is denied by deny_private"
    assert outbox.stats.failures("pager") == {"refused": 1}


async def test_without_deny_private_loopback_is_allowed(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    outbox = make_outbox(consumer(receiver.url.replace("127.0.0.1", "localhost")))
    await outbox.enqueue(down_event(clock, random.Random(10)))
    await drive(outbox, clock)
    assert len(receiver.delivered) == 1


async def test_an_alertmanager_consumer_gets_alertmanager_payloads(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    outbox = make_outbox(consumer(receiver.url, "am", format=PayloadFormat.ALERTMANAGER))
    rng = random.Random(11)
    down = down_event(clock, rng)
    unknown = cluster_state_changed("a", "unknown", "healthy", clock=clock, rng=rng)
    assert outbox.deliveries_for(unknown) == []  # nothing to say in Alertmanager terms
    await outbox.enqueue(unknown)
    await outbox.enqueue(down)
    await drive(outbox, clock)

    (payload,) = receiver.verified_events()
    assert payload["version"] == "4"
    assert payload["receiver"] == "am"
    assert payload["alerts"][0]["labels"]["alertname"] == "McobsClusterDown"
    assert receiver.received[0].webhook_id == down.id


async def test_the_same_event_enqueued_twice_goes_out_once(
    receiver: Receiver, clock: Clock, make_outbox: OutboxFactory
) -> None:
    outbox = make_outbox(consumer(receiver.url))
    event = service_failover(
        "default", "web", active=True, from_clusters=["a"], to_clusters=["b"],
        clock=clock, rng=random.Random(12),
    )  # fmt: skip
    await outbox.enqueue(event)
    await outbox.enqueue(event)
    await drive(outbox, clock)
    assert len(receiver.received) == 1


async def test_the_running_outbox_delivers_promptly(receiver: Receiver) -> None:
    outbox = Outbox(MemoryOutboxStore(), [consumer(receiver.url)], poll_interval=30.0)
    async with outbox:
        await outbox.enqueue(down_event(Clock(), random.Random(13)))
        async with asyncio.timeout(2):  # woken by enqueue, not by the 30s poll
            await receiver.wait_delivered(1)
