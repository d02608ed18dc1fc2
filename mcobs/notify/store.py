"""Where deliveries wait: the outbox store contract (Redis and memory implement it).

A delivery is *pending* (in its consumer's due queue, scored by the time of
its next attempt) or *dead* (in the dead letters, scored by when it died);
a delivered one is forgotten. `claim` hands due deliveries to one caller at a
time: it moves each to `now + lease` in the queue and gives it a new lease
token, so another replica cannot claim it until the lease runs out (the
claimer died: the delivery comes due again). `complete`, `reschedule` and
`bury` act only with the delivery's latest token; a claimer whose lease was
taken over is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from mcobs.notify.records import Delivery

DEFAULT_MAX_DEAD_LETTERS: Final = 10_000


class OutboxUnavailable(Exception):
    """The store cannot be reached (Redis down, timed out); nothing was lost by the caller."""


@dataclass(frozen=True, slots=True)
class Claim:
    delivery: Delivery
    token: int


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    total: int
    items: tuple[Delivery, ...]
    """Newest first."""


class OutboxStore(Protocol):
    async def add(self, deliveries: Sequence[Delivery], now: float) -> int:
        """Queue every delivery due at `now`, all or none; returns how many were new."""
        ...

    async def claim(self, consumer: str, now: float, lease: float, limit: int) -> list[Claim]:
        """Up to `limit` of the consumer's deliveries due at `now`, leased for `lease` seconds."""
        ...

    async def complete(self, claim: Claim) -> bool:
        """Delivered (or nothing to send): forget it. False when the lease was lost."""
        ...

    async def reschedule(self, claim: Claim, delivery: Delivery, at: float) -> bool:
        """Store `delivery` (the claimed one after an attempt) and make it due at `at`."""
        ...

    async def bury(self, claim: Claim, delivery: Delivery) -> bool:
        """Move it to the dead letters (`delivery.dead_at` set); the oldest beyond the cap go."""
        ...

    async def dead_letters(self, offset: int, limit: int) -> DeadLetterPage: ...

    async def revive(self, delivery_id: str, now: float) -> Delivery | None:
        """A dead letter back into its queue, due at `now`, with a fresh retry budget."""
        ...

    async def next_due(self, consumer: str) -> float | None:
        """When the consumer's earliest delivery is due (leased ones count), None when none."""
        ...

    async def pending(self, consumers: Sequence[str]) -> Mapping[str, int]:
        """How many deliveries wait per consumer."""
        ...

    async def close(self) -> None: ...
