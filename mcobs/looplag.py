"""How late the hub's event loop runs, so the hub can tell its own stalls from a slow cluster.

Every request a collector makes has a time limit counted in wall time. When the
loop is stalled (a burst of start-up work, a large plan), an answer can sit
unread in a socket while its limit runs out, and the latency measured for it
includes the stall. `LoopLag` schedules a timer every `tick` seconds and notes
how late it ran; `worst_since(mark)` says how long the loop was stalled since a
request began, including a stall still going on.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Final

TICK: Final = 0.1
KEEP: Final = 120.0
"""Seconds of history; longer than any request's time limit."""


class LoopLag:
    def __init__(
        self,
        *,
        tick: float = TICK,
        keep: float = KEEP,
        clock: Callable[[], float] = time.monotonic,
        on_tick: Callable[[float], None] | None = None,
    ) -> None:
        """`on_tick(late)` is called with each tick's lateness (the metrics' histogram)."""
        self._tick = tick
        self._keep = keep
        self._clock = clock
        self._on_tick = on_tick
        self._ticks: deque[tuple[float, float]] = deque()
        """(when a tick ran, how late it was), oldest first."""
        self._due: float | None = None

    def mark(self) -> float:
        """A point in time to pass to `worst_since` later."""
        return self._clock()

    def record(self, at: float, late: float) -> None:
        self._ticks.append((at, late))
        while self._ticks and self._ticks[0][0] < at - self._keep:
            self._ticks.popleft()
        if self._on_tick is not None:
            self._on_tick(late)

    def worst_since(self, mark: float) -> float:
        """The longest the loop was late to run a timer between `mark` and now."""
        now = self._clock()
        worst = max(0.0, now - self._due) if self._due is not None else 0.0
        for at, late in reversed(self._ticks):
            if at < mark:
                break
            worst = max(worst, late)
        return worst

    async def run(self) -> None:
        while True:
            self._due = self._clock() + self._tick
            await asyncio.sleep(self._tick)
            now = self._clock()
            self.record(now, max(0.0, now - self._due))
