"""The event log contract, on MemoryEventLog and RedisEventLog alike."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator
from datetime import timedelta

import pytest

from mcobs.decide.events import (
    EventLog,
    EventQuery,
    LoggedEvent,
    StaleLeader,
    event_id_ms,
)
from mcobs.decide.lease import Fence
from mcobs.model import ServiceKey
from mcobs.notify.event import (
    Event,
    cluster_state_changed,
    service_failover,
    service_last_resort,
    utc,
)
from tests.decide.conftest import Backend, RedisBackend

T0 = 1_700_000_000.0
_rng = random.Random(7)


def state(cluster: str, to: str = "down", at: float = T0) -> Event:
    return cluster_state_changed(
        cluster, "healthy", to, ["probe failed"], clock=lambda: at, rng=_rng
    )


def failover(service: str, frm: list[str], to: list[str], at: float = T0) -> Event:
    return service_failover(
        "default", service, active=True, from_clusters=frm, to_clusters=to,
        clock=lambda: at, rng=_rng,
    )  # fmt: skip


async def leader(backend: Backend, holder: str = "a") -> Fence:
    lease = backend.lease(holder)
    assert await lease.step()
    assert lease.fence is not None
    return lease.fence


async def everything(log: EventLog, **query: object) -> list[Event]:
    page = await log.read(EventQuery(limit=1000, **query))  # type: ignore[arg-type]
    return [item.event for item in page.events]


async def next_event(items: AsyncGenerator[LoggedEvent | None, None]) -> LoggedEvent:
    async def first() -> LoggedEvent:
        async for item in items:
            if item is not None:
                return item
        raise AssertionError("follow ended")

    return await asyncio.wait_for(first(), 2)


async def test_appended_events_read_back_newest_first(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    events = [state("eu-west"), state("us-east"), failover("web", ["eu-west"], ["us-east"])]
    logged = await log.append(events, fence=fence)
    assert [item.event for item in logged] == events
    page = await backend.log().read(EventQuery())
    assert [item.event for item in page.events] == events[::-1]
    assert [item.cursor for item in page.events] == [item.cursor for item in logged][::-1]
    assert page.next_cursor is None


async def test_pages_follow_the_cursor_without_gaps_or_repeats(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    events = [state(f"c{i:02d}", at=T0 + i) for i in range(25)]
    for event in events:
        await log.append([event], fence=fence)
    seen: list[Event] = []
    cursor = None
    pages = 0
    while True:
        page = await log.read(EventQuery(limit=10, cursor=cursor))
        seen += [item.event for item in page.events]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == events[::-1]
    assert pages in (3, 4)  # the last page may be empty when the limit met the end exactly


async def test_filters_by_type_cluster_service_and_time(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    web_failover = failover("web", ["eu-west", "us-east"], ["eu-west"], at=T0 + 10)
    api_resort = service_last_resort(
        "default", "api", active=True, clusters=["ap-south"], clock=lambda: T0 + 20, rng=_rng
    )
    eu, us = state("eu-west", at=T0), state("us-east", at=T0 + 30)
    await log.append([eu, web_failover, api_resort, us], fence=fence)

    assert await everything(log, types=frozenset({"service.failover"})) == [web_failover]
    assert await everything(log, cluster="us-east") == [us, web_failover]
    assert await everything(log, cluster="ap-south") == [api_resort]
    assert await everything(log, service=ServiceKey("default", "web")) == [web_failover]
    assert await everything(log, since=utc(T0 + 10), until=utc(T0 + 30)) == [
        api_resort,
        web_failover,
    ]
    assert await everything(log, since=utc(T0 + 31)) == []


async def test_a_stale_leaders_write_is_rejected(backend: Backend) -> None:
    log = backend.log()
    first = backend.lease("first")
    second = backend.lease("second")
    assert await first.step()
    old = first.fence
    assert old is not None
    await log.append([state("eu-west")], fence=old, facts={"cluster:eu-west": "{}"})

    await backend.expire()  # first's lease ran out (say it hung) ...
    assert await second.step()  # ... and second took over
    assert second.fence is not None and second.fence.token > old.token

    with pytest.raises(StaleLeader) as raised:
        await log.append([state("us-east")], fence=old, facts={"cluster:eu-west": None})
    assert raised.value.holder == "second"
    assert raised.value.token == second.fence.token
    assert "first" in str(raised.value) and "second" in str(raised.value)
    assert [e.data["cluster"] for e in await everything(backend.log())] == ["eu-west"]
    assert await backend.log().load_facts() == {"cluster:eu-west": "{}"}

    await log.append([state("ap-south")], fence=second.fence)
    assert len(await everything(log)) == 2


async def test_a_lease_that_ran_out_fences_off_its_holder(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    await backend.expire()
    with pytest.raises(StaleLeader, match="not held by anyone"):
        await log.append([state("eu-west")], fence=fence)


async def test_facts_are_written_and_deleted_with_the_events(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    await log.append([], fence=fence, facts={"a": "1", "b": "2"})
    await log.append([state("x")], fence=fence, facts={"a": None, "c": "3"})
    assert await backend.log().load_facts() == {"b": "2", "c": "3"}


async def test_follow_yields_new_events_in_order_and_none_when_idle(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    await log.append([state("before")], fence=fence)
    follower = backend.log()
    async with contextlib.aclosing(follower.follow(idle=0.05)) as items:
        assert await asyncio.wait_for(anext(items), 2) is None  # idle, and not the old event
        events = [state(f"c{i}") for i in range(3)]
        await log.append(events, fence=fence)
        got = [await next_event(items) for _ in events]
        assert [item.event for item in got] == events


async def test_follow_resumes_strictly_after_a_cursor(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    logged = await log.append([state(f"c{i}") for i in range(4)], fence=fence)
    async with contextlib.aclosing(log.follow(logged[1].cursor, idle=0.05)) as items:
        got = [await next_event(items) for _ in range(2)]
    assert [g.event for g in got] == [logged[2].event, logged[3].event]


async def test_resume_point_finds_an_event_by_its_id(backend: Backend) -> None:
    log, fence = backend.log(), await leader(backend)
    logged = await log.append([state(f"c{i}") for i in range(300)], fence=fence)
    assert await log.resume_point(logged[120].event.id) == logged[120].cursor
    assert await log.resume_point(logged[5].cursor) == logged[5].cursor
    with pytest.raises(ValueError, match="not an event id"):
        await log.resume_point("yesterday")


async def test_an_unknown_event_id_resumes_from_around_its_time(backend: Backend) -> None:
    log = backend.log()
    lost = state("gone", at=T0 + 100)
    point = await log.resume_point(lost.id)
    ms = event_id_ms(lost.id)
    assert ms is not None and int(point.split("-")[0]) < ms


async def test_the_log_is_trimmed_to_about_maxlen(backend: Backend) -> None:
    log, fence = backend.log(maxlen=10), await leader(backend)
    events = [state(f"c{i:03d}") for i in range(300)]
    for start in range(0, 300, 50):
        await log.append(events[start : start + 50], fence=fence)
    kept = await everything(log)
    assert 10 <= len(kept) <= 150  # Redis trims whole stream nodes (`MAXLEN ~`)
    assert kept[:10] == events[::-1][:10]


async def test_an_unreadable_entry_is_skipped(redis_backend: RedisBackend) -> None:
    log = redis_backend.log()
    lease = redis_backend.lease("a")
    await lease.step()
    assert lease.fence is not None
    await log.append([state("eu-west")], fence=lease.fence)
    await redis_backend.client().xadd(redis_backend.keys.events, {"event": b"{not json"})
    await log.append([state("us-east")], fence=lease.fence)
    assert [e.data["cluster"] for e in await everything(log)] == ["us-east", "eu-west"]


def test_event_ids_carry_their_time() -> None:
    event = state("x", at=T0 + 1.5)
    assert event_id_ms(event.id) == int((T0 + 1.5) * 1000)
    assert event_id_ms("evt_nope") is None
    assert utc(T0) + timedelta(seconds=1.5) == event.occurred_at
