"""The decider: the hub task that holds the lease and, while leader, records decisions.

Every replica runs one. The planner hands it each new plan (`on_plan`, cheap
and synchronous: only the latest plan is kept). While this replica holds the
lease, the decider compares the plan with the facts of the last decision
(`mcobs.decide.diff`), appends the events and the new facts to the log under
its fence, and then hands each appended event to the sinks (the webhook
outbox, a Grafana annotator, metrics), in order. A sink that fails is logged
and does not stop the others.

On becoming leader it first loads the facts the previous leader left, so a
takeover neither repeats nor loses decisions. A write rejected as stale
(`StaleLeader`) drops leadership at once; an unreachable log is retried with
backoff, reloading the facts first (an append whose reply was lost may have
landed).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from mcobs.answer import ZonePlan
from mcobs.decide.diff import decide
from mcobs.decide.events import EventLog, LoggedEvent, StaleLeader
from mcobs.decide.facts import EMPTY_FACTS, Facts, changed_entries, from_entries
from mcobs.decide.lease import Fence, Lease, hold
from mcobs.model import CatalogSnapshot
from mcobs.notify.event import Event

log = logging.getLogger(__name__)

EventSink = Callable[[Event], Awaitable[None] | None]
"""Called with each appended event, in order: e.g. the webhook outbox's `enqueue`."""

RETRY_MIN: Final = 0.2
RETRY_MAX: Final = 5.0


class Decider:
    """Holds the lease and turns plans into recorded decisions while leader."""

    def __init__(
        self,
        lease: Lease,
        events: EventLog,
        *,
        stale_after: float,
        sinks: Sequence[EventSink] = (),
        on_leadership: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.lease = lease
        self.events = events
        self._stale_after = stale_after
        self._sinks = tuple(sinks)
        self._on_leadership = on_leadership
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._latest: tuple[CatalogSnapshot, ZonePlan, float] | None = None
        self._facts: Facts = EMPTY_FACTS
        self._facts_for: Fence | None = None
        self._wake = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self.lease.is_leader

    @property
    def facts(self) -> Facts:
        """The baseline of the next decision (meaningful while leader)."""
        return self._facts

    def on_plan(self, snapshot: CatalogSnapshot, plan: ZonePlan) -> None:
        """The planner's callback: remember the latest plan and wake the decision loop."""
        self._latest = (snapshot, plan, self._clock())
        self._wake.set()

    def _leadership(self, leading: bool) -> None:
        self._facts_for = None
        if leading:
            self._wake.set()
        if self._on_leadership is not None:
            try:
                self._on_leadership(leading)
            except Exception:
                log.exception("on_leadership callback failed")

    async def decide_once(self) -> tuple[LoggedEvent, ...]:
        """Record what the latest plan changed, if leader; returns the appended events.

        Raises `EventLogUnavailable` when the log cannot be reached.
        """
        fence = self.lease.fence
        if fence is None or self._latest is None:
            return ()
        if self._facts_for != fence:
            facts, bad = from_entries(await self.events.load_facts())
            if bad:
                log.warning("dropped %d facts that did not decode: %s", len(bad), ", ".join(bad))
            self._facts, self._facts_for = facts, fence
        snapshot, plan, now = self._latest
        decision = decide(
            self._facts, snapshot, plan, now=now, stale_after=self._stale_after, rng=self._rng
        )
        changes = changed_entries(self._facts, decision.facts)
        if not decision.events and not changes:
            return ()
        if self.lease.fence != fence:
            return ()  # leadership lapsed while we loaded: never write on a stale belief
        try:
            logged = await self.events.append(decision.events, fence=fence, facts=changes)
        except StaleLeader as error:
            log.warning("%s; not leading any more", error)
            self.lease.drop()
            self._facts_for = None
            return ()
        self._facts = decision.facts
        for item in logged:
            log.info("decision %s %s: %s", item.event.type, item.event.id, _summary(item.event))
            await self._deliver(item.event)
        return logged

    async def _deliver(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                result = sink(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event sink %r failed for %s", sink, event.id)

    async def _decide_loop(self) -> None:
        delay = RETRY_MIN
        failing = False
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.decide_once()
            except Exception as error:
                if not failing:
                    log.warning("could not record decisions, retrying: %s", error)
                failing = True
                self._facts_for = None  # the failed append may have landed: reload
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                self._wake.set()
                continue
            if failing:
                log.info("recording decisions again")
            failing, delay = False, RETRY_MIN

    async def run(self) -> None:
        """Hold the lease and decide until cancelled; releases the lease on the way out."""
        async with asyncio.TaskGroup() as group:
            group.create_task(
                hold(self.lease, on_change=self._leadership, sleep=self._sleep), name="lease"
            )
            group.create_task(self._decide_loop(), name="decisions")


def _summary(event: Event) -> str:
    data = event.data
    if event.type == "cluster.state_changed":
        return f"{data.get('cluster')} {data.get('from')} -> {data.get('to')}"
    if "service" in data and "namespace" in data:
        return f"{data['namespace']}/{data['service']} active={data.get('active')}"
    return f"{data.get('cluster')} active={data.get('active')}"
