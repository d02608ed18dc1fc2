"""The webhook outbox: events in, signed and retried deliveries out.

    outbox = Outbox(store, consumers, clock=time.time, rng=random.SystemRandom())
    async with outbox:                  # starts one delivery loop per consumer
        await outbox.enqueue(event)     # one delivery per consumer that wants it

`enqueue` writes every delivery of an event to the store in one atomic step.
When the store is unreachable the event waits in this process (up to
`max_buffered` events, oldest dropped first, with an error) and is written
as soon as the store answers again, so a Redis restart does not lose it.

Each consumer's loop claims its due deliveries (a lease, so each attempt is
made by one replica), POSTs them signed (Standard Webhooks) with a timeout
and without following redirects, and then forgets, reschedules (backoff
with full jitter, never before `Retry-After`) or dead-letters each one
(see `retry`). Delivery is at least once: the `webhook-id` header is the
event id on every attempt and for every replica, for consumers to
de-duplicate. `run_once` is one pass over every consumer, for tests that
drive time themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final

from mcobs.notify.consumer import Consumer
from mcobs.notify.event import Event
from mcobs.notify.payloads import render
from mcobs.notify.records import Delivery
from mcobs.notify.retry import PERMANENT, AttemptResult, GiveUp, after_failure
from mcobs.notify.sender import Sender
from mcobs.notify.signing import webhook_headers
from mcobs.notify.stats import DeliveryStats
from mcobs.notify.store import Claim, DeadLetterPage, OutboxStore, OutboxUnavailable
from mcobs.waiting import wait_event

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL: Final = 1.0
DEFAULT_LEASE_SLACK: Final = 30.0
DEFAULT_MAX_BUFFERED: Final = 10_000
MAX_ERROR_DELAY: Final = 5.0


class UnknownConsumer(LookupError):
    """A dead letter belongs to a consumer that is not configured (any more)."""


class Outbox:
    """Durable, at-least-once webhook delivery over an `OutboxStore`.

    `clock` (Unix seconds) stamps attempts and schedules retries; `rng` draws
    the jitter. `lease_slack`: a claimed delivery comes due again after the
    consumer's timeout plus this, if its claimer never reports back.
    `poll_interval`: the longest a loop sleeps, so deliveries queued by another
    replica go out within it. Up to `concurrency` deliveries per consumer are
    in flight at once; each pass claims only that many, so no claimed delivery
    waits for a free slot while its lease runs out.
    """

    def __init__(
        self,
        store: OutboxStore,
        consumers: Sequence[Consumer],
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        stats: DeliveryStats | None = None,
        sender: Sender | None = None,
        lease_slack: float = DEFAULT_LEASE_SLACK,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        concurrency: int = 4,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        names = [c.name for c in consumers]
        if len(names) != len(set(names)):
            raise ValueError(f"consumer names must be unique: {', '.join(names)}")
        if concurrency < 1 or max_buffered < 1:
            raise ValueError("concurrency and max_buffered must be at least 1")
        self.store = store
        self.consumers: Mapping[str, Consumer] = {c.name: c for c in consumers}
        self.stats = stats if stats is not None else DeliveryStats()
        self.stats.declare(names)
        self._clock = clock
        self._rng = rng if rng is not None else random.SystemRandom()
        self._sender = sender if sender is not None else Sender(clock)
        self._lease_slack = lease_slack
        self._poll_interval = poll_interval
        self._concurrency = concurrency
        self._buffer: deque[list[Delivery]] = deque()
        self._max_buffered = max_buffered
        self._flush_lock = asyncio.Lock()
        self._wake = {name: asyncio.Event() for name in names}
        self._unavailable: set[str] = set()
        self._runner: asyncio.Task[None] | None = None

    # -- enqueueing --------------------------------------------------------------------

    def deliveries_for(self, event: Event) -> list[Delivery]:
        """One delivery per consumer that subscribes to the event and has a body for it."""
        now = self._clock()
        return [
            Delivery(c.name, event, now)
            for c in self.consumers.values()
            if c.wants(event.type)
            and render(c.format, event, receiver=c.name, external_url=c.external_url) is not None
        ]

    async def enqueue(self, event: Event) -> None:
        """Queue the event for every consumer that wants it (an `EventSink` of the decider).

        Never raises for an unreachable store: the event then waits in memory.
        """
        deliveries = self.deliveries_for(event)
        self.stats.event(event.type)
        if not deliveries:
            return
        if len(self._buffer) >= self._max_buffered:
            lost = self._buffer.popleft()
            log.error(
                "webhook outbox unreachable and %d events held: dropped event %s (%s)",
                self._max_buffered,
                lost[0].event.id,
                lost[0].event.type,
            )
        self._buffer.append(deliveries)
        with contextlib.suppress(OutboxUnavailable):
            await self.flush()
        for delivery in deliveries:
            self._wake[delivery.consumer].set()

    @property
    def buffered(self) -> int:
        """Events held in memory because the store was unreachable."""
        return len(self._buffer)

    async def flush(self) -> None:
        """Write held events to the store, oldest first; raises OutboxUnavailable."""
        async with self._flush_lock:
            while self._buffer:
                try:
                    await self.store.add(self._buffer[0], self._clock())
                except OutboxUnavailable as error:
                    self._note_unavailable("enqueue", error)
                    self.stats.set_buffered(len(self._buffer))
                    raise
                self._buffer.popleft()
                self._note_available("enqueue")
            self.stats.set_buffered(0)

    def _note_unavailable(self, what: str, error: Exception) -> None:
        if what not in self._unavailable:
            self._unavailable.add(what)
            log.warning("webhook outbox store unreachable (%s), will retry: %s", what, error)

    def _note_available(self, what: str) -> None:
        if what in self._unavailable:
            self._unavailable.discard(what)
            log.info("webhook outbox store reachable again (%s)", what)

    # -- delivering --------------------------------------------------------------------

    async def run_once(self) -> float | None:
        """Flush held events, then one pass over every consumer's due deliveries.

        Returns when the earliest remaining delivery is due (None: nothing waits).
        Raises OutboxUnavailable when the store cannot be reached.
        """
        await self.flush()
        results = await asyncio.gather(
            *(self._consumer_once(c) for c in self.consumers.values()), return_exceptions=True
        )
        due: list[float] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            if result is not None:
                due.append(result)
        return min(due, default=None)

    async def _consumer_once(self, consumer: Consumer) -> float | None:
        now = self._clock()
        lease = consumer.timeout + self._lease_slack
        claims = await self.store.claim(consumer.name, now, lease, self._concurrency)
        if claims:
            outcomes = await asyncio.gather(
                *(self._attempt(consumer, claim) for claim in claims), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return await self.store.next_due(consumer.name)

    async def _attempt(self, consumer: Consumer, claim: Claim) -> None:
        delivery = claim.delivery
        event = delivery.event
        body = render(
            consumer.format, event, receiver=consumer.name, external_url=consumer.external_url
        )
        if body is None:  # the consumer's format changed since it was queued
            await self.store.complete(claim)
            return
        headers = webhook_headers(consumer.key, event.id, int(self._clock()), body)
        started = time.perf_counter()
        result = await self._sender.send(consumer, body, headers)
        seconds = time.perf_counter() - started
        if result.ok:
            self.stats.attempt(consumer.name, "delivered", None, seconds)
            log.debug("webhook %s: event %s delivered", consumer.name, event.id)
            kept = await self.store.complete(claim)
        else:
            kept = await self._failed(consumer, claim, result, seconds)
        if not kept:
            log.info(
                "webhook %s: event %s was claimed again by another worker meanwhile",
                consumer.name,
                event.id,
            )

    async def _failed(
        self, consumer: Consumer, claim: Claim, result: AttemptResult, seconds: float
    ) -> bool:
        """Reschedule or dead-letter after a failed attempt; False when the lease was lost."""
        now = self._clock()
        event = claim.delivery.event
        attempted = claim.delivery.attempted(now, result.detail, result.status)
        step = after_failure(
            consumer.retry,
            result,
            attempts=attempted.attempts,
            created_at=attempted.created_at,
            now=now,
            rng=self._rng,
        )
        if isinstance(step, GiveUp):
            outcome = "failed" if result.kind in PERMANENT else "dead_lettered"
            self.stats.attempt(consumer.name, outcome, result.kind, seconds)
            log.warning(
                "webhook %s: event %s (%s) dead-lettered: %s",
                consumer.name,
                event.id,
                event.type,
                step.reason,
            )
            return await self.store.bury(claim, attempted.buried(now, step.reason))
        self.stats.attempt(consumer.name, "retried", result.kind, seconds)
        log.info(
            "webhook %s: event %s attempt %d failed (%s), next in %.1fs",
            consumer.name,
            event.id,
            attempted.attempts,
            result.detail,
            step.at - now,
        )
        return await self.store.reschedule(claim, attempted, step.at)

    async def run(self) -> None:
        """Deliver until cancelled: one loop per consumer and one for held events."""
        async with asyncio.TaskGroup() as group:
            for consumer in self.consumers.values():
                group.create_task(self._loop(consumer), name=f"webhook {consumer.name}")
            group.create_task(self._housekeeping(), name="webhook outbox housekeeping")

    async def _loop(self, consumer: Consumer) -> None:
        wake = self._wake[consumer.name]
        error_delay = self._poll_interval
        what = f"deliver to {consumer.name}"
        while True:
            wake.clear()
            try:
                next_at = await self._consumer_once(consumer)
            except OutboxUnavailable as error:
                self._note_unavailable(what, error)
                delay = error_delay
                error_delay = min(error_delay * 2, MAX_ERROR_DELAY)
            except Exception:
                log.exception("webhook %s: delivery pass failed", consumer.name)
                delay = error_delay
                error_delay = min(error_delay * 2, MAX_ERROR_DELAY)
            else:
                self._note_available(what)
                error_delay = self._poll_interval
                delay = self._poll_interval
                if next_at is not None:
                    delay = min(delay, max(0.0, next_at - self._clock()))
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await wait_event(wake, delay)

    async def _housekeeping(self) -> None:
        """Flush held events and refresh the gauges, every poll interval."""
        while True:
            with contextlib.suppress(OutboxUnavailable):
                await self.flush()
                self.stats.set_pending(await self.store.pending(list(self.consumers)))
                self.stats.set_dead_letters((await self.store.dead_letters(0, 0)).total)
            await asyncio.sleep(self._poll_interval)

    # -- lifecycle ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name="webhook outbox")
        task.add_done_callback(_report_crash)
        return task

    async def __aenter__(self) -> Outbox:
        if self._runner is None:
            self._runner = self._spawn(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the loops, try a last flush of held events, close HTTP sessions.

        The store is the caller's to close.
        """
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        if self._buffer:
            with contextlib.suppress(OutboxUnavailable):
                await self.flush()
            if self._buffer:
                log.error(
                    "webhook outbox unreachable at shutdown: %d held events lost",
                    len(self._buffer),
                )
        await self._sender.close()

    # -- the API's operations ----------------------------------------------------------

    async def pending(self) -> Mapping[str, int]:
        return await self.store.pending(list(self.consumers))

    async def dead_letters(self, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        return await self.store.dead_letters(offset, limit)

    async def retry_dead_letter(self, delivery_id: str) -> Delivery | None:
        """Queue a dead letter again, due now; None when there is no such dead letter."""
        consumer = delivery_id.rpartition(":")[2]
        if consumer not in self.consumers:
            raise UnknownConsumer(f"consumer {consumer!r} is not configured")
        revived = await self.store.revive(delivery_id, self._clock())
        if revived is not None:
            self._wake[consumer].set()
        return revived


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("webhook outbox stopped: %r", task.exception())
