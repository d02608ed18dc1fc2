"""The outbox store contract, run against the memory and the Redis store."""

from __future__ import annotations

import random

from mcobs.notify.records import Delivery
from tests.notify.conftest import Clock, Stores, down_event

NOW = 1_714_564_800.0


def _deliveries(n: int, consumer: str = "pager", seed: int = 1) -> list[Delivery]:
    clock, rng = Clock(NOW), random.Random(seed)
    out = []
    for _ in range(n):
        out.append(Delivery(consumer, down_event(clock, rng), NOW))
        clock.advance(1)
    return out


async def test_adding_is_idempotent_per_event_and_consumer(stores: Stores) -> None:
    store = stores.open()
    batch = _deliveries(3)
    assert await store.add(batch, NOW) == 3
    assert await store.add(batch[1:], NOW) == 0
    assert await store.pending(["pager", "other"]) == {"pager": 3, "other": 0}
    assert await store.next_due("pager") == NOW
    assert await store.next_due("other") is None


async def test_a_claim_leases_deliveries_to_one_claimer(stores: Stores) -> None:
    first, second = stores.open(), stores.open()
    await first.add(_deliveries(3), NOW)
    claims = await first.claim("pager", NOW, lease=40, limit=2)
    assert [c.delivery.event.id for c in claims] == [d.event.id for d in _deliveries(2)]
    rest = await second.claim("pager", NOW, lease=40, limit=10)
    assert len(rest) == 1
    assert await second.claim("pager", NOW + 39, lease=40, limit=10) == []
    assert await first.next_due("pager") == NOW + 40
    # The claimer died: the lease runs out and another replica takes over.
    retaken = await second.claim("pager", NOW + 40, lease=40, limit=10)
    assert len(retaken) == 3
    assert {c.token for c in retaken} == {2}


async def test_only_the_latest_claimer_may_finish_a_delivery(stores: Stores) -> None:
    store = stores.open()
    await store.add(_deliveries(1), NOW)
    (stale,) = await store.claim("pager", NOW, lease=10, limit=1)
    (fresh,) = await store.claim("pager", NOW + 10, lease=10, limit=1)
    assert not await store.complete(stale)
    assert not await store.reschedule(stale, stale.delivery, NOW + 100)
    assert not await store.bury(stale, stale.delivery.buried(NOW, "x"))
    assert await store.complete(fresh)
    assert await store.pending(["pager"]) == {"pager": 0}
    assert not await store.complete(fresh)


async def test_a_rescheduled_delivery_keeps_its_history(stores: Stores) -> None:
    store = stores.open()
    await store.add(_deliveries(1), NOW)
    (claim,) = await store.claim("pager", NOW, lease=10, limit=1)
    tried = claim.delivery.attempted(NOW + 1, "HTTP 503", 503)
    assert await store.reschedule(claim, tried, NOW + 60)
    assert await store.claim("pager", NOW + 59, lease=10, limit=1) == []
    (again,) = await store.claim("pager", NOW + 60, lease=10, limit=1)
    assert again.delivery == tried
    assert again.delivery.attempts == 1


async def test_dead_letters_are_paged_newest_first_and_capped(stores: Stores) -> None:
    store = stores.open()  # the fixture caps dead letters at 5
    await store.add(_deliveries(7), NOW)
    for i, claim in enumerate(await store.claim("pager", NOW, lease=10, limit=10)):
        dead = claim.delivery.attempted(NOW, "HTTP 500", 500).buried(NOW + i, f"reason {i}")
        assert await store.bury(claim, dead)
    assert await store.pending(["pager"]) == {"pager": 0}
    page = await store.dead_letters(0, 2)
    assert page.total == 5
    assert [d.dead_reason for d in page.items] == ["reason 6", "reason 5"]
    rest = await store.dead_letters(2, 10)
    assert [d.dead_reason for d in rest.items] == ["reason 4", "reason 3", "reason 2"]
    assert (await store.dead_letters(0, 0)).total == 5
    # The two oldest were dropped for good: they cannot be revived.
    oldest = _deliveries(7)[0]
    assert await store.revive(oldest.id, NOW) is None


async def test_a_revived_dead_letter_is_due_again_with_a_fresh_budget(stores: Stores) -> None:
    store = stores.open()
    (delivery,) = _deliveries(1)
    await store.add([delivery], NOW)
    (claim,) = await store.claim("pager", NOW, lease=10, limit=1)
    await store.bury(claim, claim.delivery.attempted(NOW, "HTTP 500", 500).buried(NOW, "spent"))
    revived = await store.revive(delivery.id, NOW + 100)
    assert revived is not None
    assert (revived.attempts, revived.created_at, revived.dead_at) == (0, NOW + 100, None)
    assert revived.last_result == "HTTP 500"
    assert await store.revive(delivery.id, NOW + 100) is None  # not dead any more
    assert (await store.dead_letters(0, 10)).total == 0
    (again,) = await store.claim("pager", NOW + 100, lease=10, limit=1)
    assert again.delivery == revived
    # A claimer from before the burial stays locked out.
    assert not await store.complete(claim)
    assert await store.complete(again)


async def test_consumers_have_separate_queues(stores: Stores) -> None:
    store = stores.open()
    await store.add(_deliveries(2, "pager") + _deliveries(1, "audit"), NOW)
    assert await store.pending(["pager", "audit"]) == {"pager": 2, "audit": 1}
    claims = await store.claim("audit", NOW, lease=10, limit=10)
    assert [c.delivery.consumer for c in claims] == ["audit"]
