"""The lease: one holder at a time, renewals, expiry, takeover with a larger token."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from mcobs.decide.lease import Fence, RedisLease, hold
from tests.decide.conftest import Backend, RedisBackend
from tests.redis_server import free_port


async def test_the_first_claim_wins_and_the_others_wait(backend: Backend) -> None:
    a, b = backend.lease("a"), backend.lease("b")
    assert await a.step()
    assert not await b.step()
    assert a.is_leader and not b.is_leader
    assert a.fence is not None and b.fence is None
    info = await b.current()
    assert info is not None
    assert (info.holder, info.token) == ("a", a.fence.token)
    assert info.since == backend.clock.now


async def test_renewing_keeps_the_token(backend: Backend) -> None:
    a = backend.lease("a")
    await a.step()
    first = a.fence
    backend.clock.advance(3)
    assert await a.step()
    assert a.fence == first


async def test_a_holder_that_cannot_renew_in_time_stops_believing_it_leads(
    backend: Backend,
) -> None:
    a = backend.lease("a", ttl=10)
    await a.step()
    backend.clock.advance(8.9)
    assert a.is_leader
    backend.clock.advance(0.2)  # past ttl minus the 10% safety margin
    assert not a.is_leader
    assert a.fence is None


async def test_after_expiry_another_takes_over_with_a_larger_token(backend: Backend) -> None:
    a, b = backend.lease("a"), backend.lease("b")
    await a.step()
    assert a.fence is not None
    old = a.fence.token
    await backend.expire()
    assert await b.step()
    assert b.fence is not None and b.fence.token > old
    assert not await a.step()
    assert not a.is_leader


async def test_release_hands_over_at_once(backend: Backend) -> None:
    a, b = backend.lease("a"), backend.lease("b")
    await a.step()
    await a.release()
    assert not a.is_leader
    assert await b.current() is None
    assert await b.step()


async def test_a_follower_retries_when_the_lease_runs_out(backend: Backend) -> None:
    a, b = backend.lease("a", ttl=9), backend.lease("b", ttl=9)
    await a.step()
    await b.step()
    assert 0 < b.next_step_in() <= 3  # never later than a renewal period
    assert a.next_step_in() == 3


async def test_redis_lease_expires_by_itself_and_is_taken_over(
    redis_backend: RedisBackend,
) -> None:
    a = RedisLease(redis_backend.client(), prefix=redis_backend.prefix, holder="a", ttl=0.3)
    b = RedisLease(redis_backend.client(), prefix=redis_backend.prefix, holder="b", ttl=0.3)
    assert await a.step()
    assert a.fence is not None
    first = a.fence.token
    assert not await b.step()
    assert b.next_step_in() <= 0.3  # it sleeps until the lease's remaining time
    deadline = time.monotonic() + 2
    while not await b.step():
        assert time.monotonic() < deadline, "no takeover"
        await asyncio.sleep(b.next_step_in())
    assert not a.is_leader  # its own clock told it before Redis did
    assert b.fence is not None and b.fence.token > first


async def test_a_lease_without_redis_is_not_leader_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mcobs.decide.events import connect

    client = connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    lease = RedisLease(client, holder="a")
    try:
        with caplog.at_level(logging.WARNING, logger="mcobs.decide.lease"):
            assert not await lease.step()
            assert not await lease.step()
        assert not lease.is_leader
        assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1
        with pytest.raises(Exception):  # noqa: B017 - any connection error
            await lease.current()
    finally:
        await client.aclose()


async def test_a_dropped_holder_whose_lease_is_still_stored_gets_it_back(
    backend: Backend,
) -> None:
    a = backend.lease("a")
    await a.step()
    fence = a.fence
    a.drop()
    assert not a.is_leader
    assert await a.step()
    assert a.fence == fence


async def test_hold_claims_renews_and_releases_on_cancel(backend: Backend) -> None:
    a, b = backend.lease("a"), backend.lease("b")
    changes: list[bool] = []
    slept: list[float] = []
    go = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) >= 3:
            go.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold(a, on_change=changes.append, sleep=sleep))
    await go.wait()
    assert changes == [True]
    assert slept == [10 / 3] * 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert changes == [True, False]
    assert await b.step()  # released, so no wait for expiry
    assert b.fence is not None and b.fence != Fence("a", 1)
