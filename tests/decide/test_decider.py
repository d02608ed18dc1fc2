"""The decider: only the leader records decisions; a new leader carries on where the old stopped."""

from __future__ import annotations

import asyncio
import random

from mcobs.answer import build_zone
from mcobs.decide.decider import Decider
from mcobs.decide.events import EventQuery
from mcobs.model import CatalogSnapshot
from mcobs.notify.event import Event
from tests.decide.conftest import Backend
from tests.decide.test_diff import NOW, POLICY, cluster, fleet, three


def healthy() -> CatalogSnapshot:
    return three()


def us_east_unready() -> CatalogSnapshot:
    return fleet(cluster("eu-west"), cluster("us-east", ready=0), cluster("ap-south"))


def decider(backend: Backend, holder: str, **kwargs: object) -> Decider:
    return Decider(
        backend.lease(holder),
        backend.log(),
        stale_after=30.0,
        clock=lambda: NOW,
        rng=random.Random(holder),
        **kwargs,  # type: ignore[arg-type]
    )


def feed(d: Decider, snap: CatalogSnapshot) -> None:
    d.on_plan(snap, build_zone(snap, POLICY, NOW))


async def logged(backend: Backend) -> list[Event]:
    page = await backend.log().read(EventQuery(limit=1000))
    return [item.event for item in reversed(page.events)]


async def test_the_leader_records_decisions_and_hands_them_to_every_sink(
    backend: Backend,
) -> None:
    got: list[str] = []
    later: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("sink down")

    async def slow(event: Event) -> None:
        await asyncio.sleep(0)
        later.append(event.type)

    d = decider(backend, "a", sinks=[lambda e: got.append(e.type), broken, slow])
    assert await d.lease.step()
    feed(d, healthy())
    assert await d.decide_once() == ()
    feed(d, us_east_unready())
    written = await d.decide_once()
    assert [item.event.type for item in written] == ["service.failover"]
    assert got == later == ["service.failover"]
    assert await logged(backend) == [written[0].event]


async def test_a_follower_records_nothing(backend: Backend) -> None:
    a, b = decider(backend, "a"), decider(backend, "b")
    await a.lease.step()
    await b.lease.step()
    feed(b, us_east_unready())
    assert await b.decide_once() == ()
    assert await logged(backend) == []


async def test_a_new_leader_carries_on_from_the_facts_of_the_old(backend: Backend) -> None:
    a, b = decider(backend, "a"), decider(backend, "b")
    await a.lease.step()
    feed(a, healthy())
    await a.decide_once()
    feed(a, us_east_unready())
    failover = await a.decide_once()

    await backend.expire()  # a died
    assert await b.lease.step()
    feed(b, us_east_unready())
    assert await b.decide_once() == ()  # nothing new: no repeat of a's failover
    feed(b, healthy())
    back = await b.decide_once()
    assert [item.event.data["active"] for item in back] == [False]
    assert back[0].event.data["since"] == failover[0].event.timestamp


async def test_a_stale_leader_is_rejected_and_stops_at_once(backend: Backend) -> None:
    a, b = decider(backend, "a"), decider(backend, "b")
    await a.lease.step()
    feed(a, healthy())
    await a.decide_once()
    await backend.expire()  # a hung long enough for its lease to run out ...
    assert await b.lease.step()  # ... b took over, and a has not noticed yet
    assert a.is_leader
    feed(a, us_east_unready())
    assert await a.decide_once() == ()
    assert not a.is_leader
    assert await logged(backend) == []


async def test_run_decides_on_each_plan_and_releases_the_lease_when_stopped(
    backend: Backend,
) -> None:
    leadership: list[bool] = []
    d = decider(backend, "a", on_leadership=leadership.append)
    task = asyncio.create_task(d.run())
    feed(d, healthy())
    feed(d, us_east_unready())
    for _ in range(200):
        if await logged(backend):
            break
        await asyncio.sleep(0.01)
    assert [e.type for e in await logged(backend)] == ["service.failover"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert leadership == [True, False]
    assert await backend.lease("b").current() is None
