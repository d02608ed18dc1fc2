"""The outbox store in process memory: `mcobs demo` without Redis, and tests.

Same contract as the Redis store (the contract tests run against both), but
nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcobs.notify.records import Delivery
from mcobs.notify.store import DEFAULT_MAX_DEAD_LETTERS, Claim, DeadLetterPage


class MemoryOutboxStore:
    def __init__(self, *, max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS) -> None:
        self._deliveries: dict[str, Delivery] = {}
        self._due: dict[str, dict[str, float]] = {}
        self._tokens: dict[str, int] = {}
        self._dead: dict[str, float] = {}
        self._max_dead = max_dead_letters

    async def add(self, deliveries: Sequence[Delivery], now: float) -> int:
        added = 0
        for delivery in deliveries:
            if delivery.id in self._deliveries:
                continue
            self._deliveries[delivery.id] = delivery
            self._due.setdefault(delivery.consumer, {})[delivery.id] = now
            added += 1
        return added

    def _ordered(self, consumer: str) -> list[tuple[float, str]]:
        return sorted((at, id_) for id_, at in self._due.get(consumer, {}).items())

    async def claim(self, consumer: str, now: float, lease: float, limit: int) -> list[Claim]:
        claims: list[Claim] = []
        queue = self._due.get(consumer, {})
        for at, id_ in self._ordered(consumer):
            if at > now or len(claims) >= limit:
                break
            queue[id_] = now + lease
            self._tokens[id_] = token = self._tokens.get(id_, 0) + 1
            claims.append(Claim(self._deliveries[id_], token))
        return claims

    def _holds(self, claim: Claim) -> bool:
        return self._tokens.get(claim.delivery.id) == claim.token

    async def complete(self, claim: Claim) -> bool:
        if not self._holds(claim):
            return False
        id_ = claim.delivery.id
        self._due.get(claim.delivery.consumer, {}).pop(id_, None)
        self._deliveries.pop(id_, None)
        self._tokens.pop(id_, None)
        return True

    async def reschedule(self, claim: Claim, delivery: Delivery, at: float) -> bool:
        if not self._holds(claim):
            return False
        self._deliveries[delivery.id] = delivery
        self._due.setdefault(delivery.consumer, {})[delivery.id] = at
        return True

    async def bury(self, claim: Claim, delivery: Delivery) -> bool:
        if not self._holds(claim):
            return False
        assert delivery.dead_at is not None
        self._deliveries[delivery.id] = delivery
        self._due.get(delivery.consumer, {}).pop(delivery.id, None)
        self._dead[delivery.id] = delivery.dead_at
        excess = len(self._dead) - self._max_dead
        if excess > 0:
            for _, id_ in sorted((at, id_) for id_, at in self._dead.items())[:excess]:
                del self._dead[id_]
                self._deliveries.pop(id_, None)
                self._tokens.pop(id_, None)
        return True

    async def dead_letters(self, offset: int, limit: int) -> DeadLetterPage:
        newest = sorted(((at, id_) for id_, at in self._dead.items()), reverse=True)
        page = newest[offset : offset + limit] if limit > 0 else []
        return DeadLetterPage(len(newest), tuple(self._deliveries[id_] for _, id_ in page))

    async def revive(self, delivery_id: str, now: float) -> Delivery | None:
        if self._dead.pop(delivery_id, None) is None:
            return None
        delivery = self._deliveries[delivery_id].revived(now)
        self._deliveries[delivery_id] = delivery
        self._due.setdefault(delivery.consumer, {})[delivery_id] = now
        return delivery

    async def next_due(self, consumer: str) -> float | None:
        queue = self._due.get(consumer)
        return min(queue.values()) if queue else None

    async def pending(self, consumers: Sequence[str]) -> Mapping[str, int]:
        return {c: len(self._due.get(c, {})) for c in consumers}

    async def close(self) -> None:
        return None
