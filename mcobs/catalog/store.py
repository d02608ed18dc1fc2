"""The catalog store contract, and the watcher that keeps a snapshot of it in memory.

A store holds every cluster's latest `ClusterReport` (replaced as a whole), the
overrides (drains by people, firing alerts from Alertmanager), and a version
that grows with every change. Writers (collectors) `put` and `remove`;
readers (DNS, HTTP) use a `CatalogWatcher`, which loads a `snapshot()` when
`subscribe()` says something changed, polls slowly as a safety net, and keeps
serving its last good snapshot while the store is unavailable.

Staleness is not the store's business: a cluster that stopped reporting keeps
its last report (the health code judges `observed_at` against its clock). A
collector whose cluster did not change sends a `heartbeat` instead of the same
report again, which moves `observed_at` without counting as a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from types import TracebackType
from typing import Protocol

from mcobs.model import EMPTY_SNAPSHOT, AlertMark, CatalogSnapshot, ClusterReport, Drain, Scope
from mcobs.waiting import wait_event

log = logging.getLogger(__name__)


class CatalogUnavailable(Exception):
    """The store cannot be reached (or is closed); keep serving the last good snapshot."""


class CatalogStore(Protocol):
    async def put(self, report: ClusterReport) -> None:
        """Replace `report.cluster`'s whole report atomically; bumps the version.

        Raises `CatalogDecodeError` for a report that would not read back,
        `CatalogUnavailable` when the store cannot be reached.
        """
        ...

    async def heartbeat(self, cluster: str, observed_at: float) -> bool:
        """Say that `cluster`'s stored report still holds at `observed_at`.

        Not a change: no version bump, no notification; snapshots taken after it
        show the report with the newer `observed_at`, so readers see heartbeats
        at their next reload (the watcher polls). False, writing nothing, when the
        store has no report of `cluster` (then `put` the whole report).
        """
        ...

    async def remove(self, cluster: str) -> None:
        """Forget one cluster (bumps the version if it was there)."""
        ...

    async def put_drain(self, drain: Drain) -> None:
        """Add or replace the drain of `drain.scope` (one per scope); bumps the version."""
        ...

    async def remove_drain(self, scope: Scope) -> bool:
        """Undrain a scope; False when it was not drained."""
        ...

    async def put_alert(self, alert: AlertMark) -> None:
        """Add or replace a firing alert by fingerprint; bumps the version."""
        ...

    async def remove_alert(self, fingerprint: str) -> bool:
        """Forget a resolved alert; False when it was not known."""
        ...

    async def snapshot(self) -> CatalogSnapshot:
        """Every readable report and the version they belong to, consistently."""
        ...

    def subscribe(self) -> AsyncGenerator[int | None, None]:
        """Change notifications until the store closes.

        Yields `None` once the subscription is live and again after every
        reconnection (changes may have been missed: reload everything), and the
        new version after each change. Close it with `contextlib.aclosing`.
        """
        ...

    async def close(self) -> None: ...


OnChange = Callable[[CatalogSnapshot], None]


class CatalogWatcher:
    """Keeps the latest good `CatalogSnapshot` of a store in memory.

    Reloads on every change notification, polls every `poll_interval` seconds
    when notifications are silent, and on `CatalogUnavailable` keeps `current`
    and retries with exponential backoff (`retry_min` .. `retry_max` seconds).
    Reloads are at least `min_interval` seconds apart, so a burst of changes
    costs one reload, not one per change. `on_change` is called with each new
    snapshot (in the watcher's task).

    Use `async with CatalogWatcher(store) as watcher:` or `start()` / `stop()`.
    """

    def __init__(
        self,
        store: CatalogStore,
        *,
        on_change: OnChange | None = None,
        poll_interval: float = 5.0,
        min_interval: float = 0.1,
        retry_min: float = 0.2,
        retry_max: float = 5.0,
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._poll_interval = poll_interval
        self._min_interval = min_interval
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._current = EMPTY_SNAPSHOT
        self._loaded = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def current(self) -> CatalogSnapshot:
        """The last good snapshot (`EMPTY_SNAPSHOT` until the first load)."""
        return self._current

    @property
    def loaded(self) -> bool:
        """At least one snapshot was loaded (readiness)."""
        return self._loaded.is_set()

    @property
    def last_error(self) -> str | None:
        """Why the latest reload failed; None once a reload succeeds."""
        return self._last_error

    async def wait_loaded(self) -> CatalogSnapshot:
        """Wait for the first snapshot (wrap in `asyncio.wait_for` to bound it)."""
        await self._loaded.wait()
        return self._current

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("CatalogWatcher already started")
        self._wake.set()
        self._tasks = [
            asyncio.create_task(self._listen(), name="catalog-watcher-listen"),
            asyncio.create_task(self._reload_loop(), name="catalog-watcher-reload"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> CatalogWatcher:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _listen(self) -> None:
        while True:
            try:
                async with contextlib.aclosing(self._store.subscribe()) as changes:
                    async for version in changes:
                        if version is None or version != self._current.version:
                            self._wake.set()
                return  # the store closed
            except Exception:
                log.exception("catalog subscription failed; resubscribing")
                self._wake.set()
                await asyncio.sleep(self._retry_max)

    async def _reload_loop(self) -> None:
        delay = self._retry_min
        while True:
            timeout = self._poll_interval if self._last_error is None else delay
            with contextlib.suppress(TimeoutError):
                await wait_event(self._wake, timeout)
            self._wake.clear()
            try:
                snapshot = await self._store.snapshot()
            except Exception as error:
                if not isinstance(error, CatalogUnavailable):
                    log.exception("catalog snapshot failed unexpectedly")
                if self._last_error is None:
                    log.warning("catalog unavailable, serving the last snapshot: %s", error)
                    delay = self._retry_min
                else:
                    delay = min(delay * 2, self._retry_max)
                self._last_error = str(error) or type(error).__name__
                continue
            if self._last_error is not None:
                log.info("catalog available again (version %d)", snapshot.version)
                self._last_error = None
            self._apply(snapshot)
            await asyncio.sleep(self._min_interval)

    def _apply(self, snapshot: CatalogSnapshot) -> None:
        old = self._current
        if self.loaded and snapshot.version == old.version and _same(snapshot.reports, old.reports):
            return
        self._current = snapshot
        self._loaded.set()
        if self._on_change is not None:
            try:
                self._on_change(snapshot)
            except Exception:
                log.exception("catalog on_change callback failed (version %d)", snapshot.version)


def _same(new: Mapping[str, ClusterReport], old: Mapping[str, ClusterReport]) -> bool:
    """Equal reports; cheap when the store hands back the same objects for unchanged ones."""
    return new.keys() == old.keys() and all(
        report is old[name] or report == old[name] for name, report in new.items()
    )
