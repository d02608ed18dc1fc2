"""A token bucket that keeps the log quiet when bad packets arrive in bulk."""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """Allows `burst` events, refilled at `rate` per second; counts what it suppressed."""

    def __init__(
        self,
        rate: float = 1.0,
        burst: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self.suppressed = 0

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.suppressed += 1
        return False
