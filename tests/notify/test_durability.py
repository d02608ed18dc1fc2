"""The Redis outbox across restarts, outages and replicas: no event is lost."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from mcobs.notify.event import Event
from mcobs.notify.memory import MemoryOutboxStore
from mcobs.notify.outbox import Outbox
from mcobs.notify.redis import RedisOutboxStore
from mcobs.notify.retry import RetryPolicy
from mcobs.notify.store import OutboxStore, OutboxUnavailable
from tests.notify.conftest import Clock, Receiver, Reply, Stores, consumer, down_event
from tests.notify.test_delivery import drive
from tests.redis_server import RedisServer


def _outbox(
    store: OutboxStore, receiver: Receiver, clock: Clock, seed: int = 0, concurrency: int = 4
) -> Outbox:
    return Outbox(
        store,
        [consumer(receiver.url)],
        clock=clock,
        rng=random.Random(seed),
        concurrency=concurrency,
    )


async def test_pending_deliveries_survive_a_restart_of_mcobs(
    redis_stores: Stores, receiver: Receiver, clock: Clock
) -> None:
    receiver.default = Reply(503)
    first = _outbox(redis_stores.open(), receiver, clock)
    rng = random.Random(1)
    events = [down_event(clock, rng, f"c{i}") for i in range(5)]
    for event in events:
        await first.enqueue(event)
    await drive(first, clock, within=60.0)
    await first.close()  # mcobs stops while the consumer is down
    assert {r.webhook_id for r in receiver.received} == {e.id for e in events}
    assert not receiver.delivered

    receiver.default = Reply(200)
    second = _outbox(redis_stores.open(), receiver, clock, seed=1)  # a new process
    await drive(second, clock)
    await second.close()
    assert sorted(r.webhook_id for r in receiver.delivered) == sorted(e.id for e in events)


async def test_a_delivery_claimed_by_a_process_that_died_goes_out_after_its_lease(
    redis_stores: Stores, receiver: Receiver, clock: Clock
) -> None:
    store = redis_stores.open()
    dying = _outbox(store, receiver, clock)
    event = down_event(clock, random.Random(2))
    await dying.enqueue(event)
    await store.claim("pager", clock.now, lease=32.0, limit=10)  # ... and then it died
    await dying.close()

    survivor = _outbox(redis_stores.open(), receiver, clock, seed=1)
    assert await survivor.run_once() == clock.now + 32.0
    assert receiver.received == []
    clock.advance(32.0)
    await survivor.run_once()
    await survivor.close()
    assert [r.webhook_id for r in receiver.delivered] == [event.id]


async def test_a_consumer_down_for_an_hour_gets_every_event_exactly_once_after_dedup(
    redis_stores: Stores, receiver: Receiver
) -> None:
    # The fake hour ends near the real present, so the standardwebhooks library
    # (which checks timestamps against the real clock, within 5 minutes) verifies
    # the deliveries made once the consumer is back.
    clock = Clock(time.time() - 3600 - 120)
    back_at = clock.now + 3600
    outbox = Outbox(
        redis_stores.open(),
        [consumer(receiver.url, retry=RetryPolicy(backoff_base=2.0, backoff_cap=300.0))],
        clock=clock,
        rng=random.Random(3),
    )
    receiver.default = Reply(503)
    rng = random.Random(4)
    events: list[Event] = []
    while clock.now < back_at:
        if len(events) < 12:
            events.append(down_event(clock, rng, f"c{len(events)}"))
            await outbox.enqueue(events[-1])
        await outbox.run_once()
        clock.advance(30.0)
    assert len(receiver.received) > 12 * 10  # retried all along
    assert not receiver.delivered

    # Back, but it processes the first two requests and loses their answers (500):
    # at least once means those two events arrive twice.
    receiver.default = Reply(200)
    receiver.fail(2, status=500)
    await drive(outbox, clock, within=900.0)
    await outbox.close()

    payloads = receiver.verified_events()  # every 2xx-answered request verifies
    processed = [r for r in receiver.received if r.status in (200, 500)]
    by_id = Counter(r.webhook_id for r in processed)
    assert set(by_id) == {e.id for e in events}
    assert sorted(by_id.values()) == [1] * 10 + [2] * 2
    deduplicated = {p["id"]: p for p in payloads}
    assert sorted(deduplicated) == sorted(e.id for e in events)
    assert (await outbox.dead_letters()).total == 0


async def test_two_replicas_make_each_attempt_once(
    redis_stores: Stores, receiver: Receiver, clock: Clock
) -> None:
    first = _outbox(redis_stores.open(), receiver, clock, seed=1, concurrency=3)
    second = _outbox(redis_stores.open(), receiver, clock, seed=2, concurrency=3)
    receiver.fail(20, status=503)  # the first attempt of each event fails
    rng = random.Random(5)
    events = [down_event(clock, rng, f"c{i}") for i in range(20)]
    for i, event in enumerate(events):
        await (first if i % 2 else second).enqueue(event)
    for _ in range(100):
        next_due = await asyncio.gather(first.run_once(), second.run_once())
        pending = [t for t in next_due if t is not None]
        if not pending:
            break
        clock.now = max(clock.now, min(pending))
    await first.close()
    await second.close()

    requests = Counter(r.webhook_id for r in receiver.received)
    assert requests == dict.fromkeys((e.id for e in events), 2)  # one failed, one delivered
    attempts = [first.stats.counters("pager"), second.stats.counters("pager")]
    assert sum(c["delivered"] for c in attempts) == 20
    assert all(sum(c.values()) > 0 for c in attempts)  # both replicas made attempts


async def test_a_redis_restart_loses_no_event(
    own_redis_server: RedisServer, receiver: Receiver
) -> None:
    store = RedisOutboxStore.from_url(own_redis_server.url, prefix="restart", timeout=0.5)
    outbox = Outbox(store, [consumer(receiver.url)], poll_interval=0.05)
    rng = random.Random(6)
    clock = Clock()
    try:
        async with outbox:
            before = down_event(clock, rng, "before")
            await outbox.enqueue(before)
            async with asyncio.timeout(5):
                await receiver.wait_delivered(1)

            own_redis_server.stop()
            during = [down_event(clock, rng, f"during{i}") for i in range(3)]
            for event in during:
                await outbox.enqueue(event)  # held in memory, never raises
            assert outbox.buffered == 3
            await asyncio.sleep(0.2)  # the loops keep failing meanwhile, and keep going

            own_redis_server.start()  # empty: no persistence in this test server
            after = down_event(clock, rng, "after")
            await outbox.enqueue(after)
            async with asyncio.timeout(5):
                await receiver.wait_delivered(5)
            assert outbox.buffered == 0
    finally:
        await store.close()
    ids = [r.webhook_id for r in receiver.delivered]
    assert sorted(ids) == sorted(e.id for e in [before, *during, after])


async def test_run_once_reports_an_unreachable_store(
    own_redis_server: RedisServer, receiver: Receiver, clock: Clock
) -> None:
    store = RedisOutboxStore.from_url(own_redis_server.url, prefix="down", timeout=0.5)
    outbox = _outbox(store, receiver, clock)
    own_redis_server.stop()
    try:
        await outbox.enqueue(down_event(clock, random.Random(7)))
        try:
            await outbox.run_once()
        except OutboxUnavailable as error:
            assert "redis add failed" in str(error)
        else:
            raise AssertionError("run_once did not raise")
        own_redis_server.start()
        await drive(outbox, clock)
        assert len(receiver.delivered) == 1
    finally:
        await outbox.close()
        await store.close()


async def test_a_stored_delivery_that_does_not_decode_is_dropped(
    redis_stores: Stores, receiver: Receiver, clock: Clock
) -> None:
    store = redis_stores.open()
    assert isinstance(store, RedisOutboxStore)
    client = store._client
    await client.hset(store.keys.deliveries, "evt_bad:pager", b"{not json")
    await client.zadd(store.keys.due("pager"), {"evt_bad:pager": clock.now})
    outbox = _outbox(store, receiver, clock)
    assert await outbox.run_once() is None
    await outbox.close()
    assert receiver.received == []
    assert await client.hlen(store.keys.deliveries) == 0


async def test_the_memory_store_keeps_the_same_promises_within_one_process(
    receiver: Receiver, clock: Clock
) -> None:
    store = MemoryOutboxStore()
    receiver.fail(1)
    first = _outbox(store, receiver, clock)
    await first.enqueue(down_event(clock, random.Random(8)))
    await first.run_once()
    await first.close()
    second = _outbox(store, receiver, clock, seed=1)
    await drive(second, clock)
    await second.close()
    assert [r.status for r in receiver.received] == [503, 200]
