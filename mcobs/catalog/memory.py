"""The embedded, in-process catalog (`mcobs demo` without Redis, and tests).

Same contract as `RedisCatalog`: reports go through the codec on `put`, so what
comes back is exactly what Redis would give back, and a report Redis readers
would skip is refused here too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from types import MappingProxyType

from mcobs.catalog.codec import (
    alert_from_bytes,
    alert_to_bytes,
    drain_from_bytes,
    drain_to_bytes,
    report_from_bytes,
    report_to_bytes,
)
from mcobs.catalog.store import CatalogUnavailable
from mcobs.model import AlertMark, CatalogSnapshot, ClusterReport, Drain, Scope


class _Subscriber:
    __slots__ = ("latest", "wake")

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.latest = 0


class MemoryCatalog:
    """A `CatalogStore` in a dict.

    `ttl`: forget a cluster `ttl` seconds after its last `put` (None: never),
    judged by `clock` (Unix seconds).
    """

    def __init__(self, *, ttl: float | None = None, clock: Callable[[], float] = time.time) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self._ttl = ttl
        self._clock = clock
        self._reports: dict[str, ClusterReport] = {}
        self._drains: dict[str, Drain] = {}
        self._alerts: dict[str, AlertMark] = {}
        self._deadlines: dict[str, float] = {}
        self._seen: dict[str, float] = {}
        self._version = 0
        self._subscribers: set[_Subscriber] = set()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise CatalogUnavailable("catalog is closed")

    def _changed(self) -> None:
        self._version += 1
        for sub in self._subscribers:
            sub.latest = self._version
            sub.wake.set()

    def _expired(self, now: float) -> list[str]:
        return [c for c, deadline in self._deadlines.items() if deadline <= now]

    async def put(self, report: ClusterReport) -> None:
        self._check_open()
        stored = report_from_bytes(report_to_bytes(report))  # validates, and copies
        now = self._clock()
        self._reports[stored.cluster] = stored
        self._seen.pop(stored.cluster, None)
        self._extend(stored.cluster, now)
        for cluster in self._expired(now):
            del self._reports[cluster], self._deadlines[cluster]
            self._seen.pop(cluster, None)
        self._changed()

    def _extend(self, cluster: str, now: float) -> None:
        if self._ttl is None:
            self._deadlines.pop(cluster, None)
        else:
            self._deadlines[cluster] = now + self._ttl

    async def heartbeat(self, cluster: str, observed_at: float) -> bool:
        self._check_open()
        if cluster not in self._reports:
            return False
        self._seen[cluster] = max(observed_at, self._seen.get(cluster, observed_at))
        self._extend(cluster, self._clock())
        return True

    async def remove(self, cluster: str) -> None:
        self._check_open()
        self._deadlines.pop(cluster, None)
        self._seen.pop(cluster, None)
        if self._reports.pop(cluster, None) is not None:
            self._changed()

    async def put_drain(self, drain: Drain) -> None:
        self._check_open()
        self._drains[str(drain.scope)] = drain_from_bytes(drain_to_bytes(drain))
        self._changed()

    async def remove_drain(self, scope: Scope) -> bool:
        self._check_open()
        if self._drains.pop(str(scope), None) is None:
            return False
        self._changed()
        return True

    async def put_alert(self, alert: AlertMark) -> None:
        self._check_open()
        self._alerts[alert.fingerprint] = alert_from_bytes(alert_to_bytes(alert))
        self._changed()

    async def remove_alert(self, fingerprint: str) -> bool:
        self._check_open()
        if self._alerts.pop(fingerprint, None) is None:
            return False
        self._changed()
        return True

    async def snapshot(self) -> CatalogSnapshot:
        self._check_open()
        expired = set(self._expired(self._clock()))
        reports = {
            c: replace(r, observed_at=self._seen[c])
            if self._seen.get(c, 0.0) > r.observed_at
            else r
            for c, r in self._reports.items()
            if c not in expired
        }
        return CatalogSnapshot(
            MappingProxyType(reports),
            self._version,
            drains=MappingProxyType(dict(self._drains)),
            alerts=MappingProxyType(dict(self._alerts)),
        )

    async def subscribe(self) -> AsyncGenerator[int | None, None]:
        if self._closed:
            return
        sub = _Subscriber()
        self._subscribers.add(sub)
        try:
            yield None
            while True:
                await sub.wake.wait()
                sub.wake.clear()
                if self._closed:
                    return
                yield sub.latest
        finally:
            self._subscribers.discard(sub)

    async def close(self) -> None:
        self._closed = True
        for sub in self._subscribers:
            sub.wake.set()
