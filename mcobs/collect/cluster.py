"""One cluster's collector: watches, health sweeps, and reports to the catalog.

Services, EndpointSlices and Nodes are watched; every `interval` a sweep
probes `/readyz` and reads the Prometheus signals, and the pure health code
turns both into the cluster's health. A report goes to the catalog after each
sweep and soon after any watched change. A broken watch triggers an early
sweep, so an outage is noticed in about a second instead of a full interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from string import Template
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import aiohttp

from mcobs.annotations import options_of
from mcobs.catalog.store import CatalogStore, CatalogUnavailable
from mcobs.collect.convert import (
    SlimService,
    SlimSlice,
    cluster_services,
    node_ready,
    to_service,
    to_slice,
)
from mcobs.collect.credentials import CredentialsError
from mcobs.collect.kubeapi import KubeApi, KubeError, describe
from mcobs.collect.pace import SweepPace
from mcobs.collect.probe import probe_service
from mcobs.collect.prom import SignalQuery
from mcobs.collect.reflector import Reflector
from mcobs.health import HealthPolicy, Tracker, combine, judge_signals, observe, track
from mcobs.looplag import LoopLag
from mcobs.model import (
    UNKNOWN_HEALTH,
    ApiProbe,
    ClusterReport,
    ClusterService,
    Health,
    ServiceKey,
    Signal,
)
from mcobs.waiting import stop_if_cancelled, wait_event

log = logging.getLogger(__name__)
T = TypeVar("T")

COALESCE_SECONDS = 0.05
RETRY_AFTER_FAILURE = 1.0
MIN_SWEEP_GAP = 0.25
CREDENTIALS_RETRY = 30.0
CONNECT_GRACE = 30.0
"""How long the first sweep waits for credentials to load. A hub starting with a
thousand clusters loads them one after another; sweeping before its credentials
are ready would report a healthy cluster as unreachable."""
BUSY_STALL = 0.25
"""A probe during which the hub's event loop stalled this long (seconds) does not
judge the cluster: a time limit that ran out, or a latency measured, then says
more about the hub than about the cluster."""
MAX_INCONCLUSIVE = 3
"""After this many inconclusive probes since the API last answered, time-outs count
again: a busy hub delays noticing an outage by a few seconds, it never hides one."""


AnyReflector = Reflector[SlimService] | Reflector[SlimSlice] | Reflector[bool]


class SignalSource(Protocol):
    async def read(self) -> tuple[Signal, ...]: ...

    async def read_queries(self, queries: Sequence[SignalQuery]) -> tuple[Signal, ...]: ...


class SweepRecorder(Protocol):
    """Where sweep durations and errors are counted (`mcobs.metrics`)."""

    def sweep(self, cluster: str, seconds: float) -> None: ...

    def error(self, cluster: str, kind: str) -> None: ...

    def inconclusive(self, cluster: str) -> None: ...


class _NoRecorder:
    def sweep(self, cluster: str, seconds: float) -> None:
        pass

    def error(self, cluster: str, kind: str) -> None:
        pass

    def inconclusive(self, cluster: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ServiceChecks:
    """Per-service health checks: probes (opt-in by annotation) and templated signals."""

    session: aiohttp.ClientSession | None = None
    """For HTTP probes; None disables probes."""
    signals: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Signal name -> PromQL with $namespace, $service and $cluster placeholders."""
    timeout: float = 3.0


@dataclass(frozen=True, slots=True)
class ClusterIdentity:
    name: str
    region: str
    weight: float = 1.0
    priority: int = 0
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _asks_for_checks(service: ClusterService) -> bool:
    options, _ = options_of(service.annotations)
    return bool(options.probe or options.signals)


class ClusterCollector:
    def __init__(
        self,
        *,
        identity: ClusterIdentity,
        connect: Callable[[], Awaitable[KubeApi]],
        signals: SignalSource | None,
        store: CatalogStore,
        policy: HealthPolicy,
        interval: float,
        clock: Callable[[], float] = time.time,
        checks: ServiceChecks = ServiceChecks(),
        recorder: SweepRecorder | None = None,
        last_known: Callable[[str], ClusterReport | None] | None = None,
        signal_interval: float = 0.0,
        start_delay: float = 0.0,
        probe_slots: asyncio.Semaphore | None = None,
        loop_lag: LoopLag | None = None,
        pace: SweepPace | None = None,
    ) -> None:
        """`signal_interval`: read the cluster's Prometheus signals at most this often
        while its health is settled (every sweep while it is not). `start_delay`:
        wait this long before the first connection, so a thousand collectors
        starting together do not all connect, list and sweep in the same second.
        `probe_slots`: shared by a hub's collectors, it bounds the `/readyz` probes in
        flight, so a probe's time limit and latency count the cluster's answer, not
        the wait behind a thousand other probes. `loop_lag`: the hub's event loop
        monitor; a probe during which the loop stalled is inconclusive (`BUSY_STALL`).
        `pace`: shared by a hub's collectors, it stretches both intervals for big fleets."""
        self._probe_slots = probe_slots or contextlib.nullcontext()
        self._loop_lag = loop_lag
        self._inconclusive = 0
        self.identity = identity
        self._pace = pace or SweepPace(interval, signal_interval)
        self._start_delay = start_delay
        self._signals_read_at = -math.inf
        self._closed = False
        self._task: asyncio.Task[Any] | None = None
        self._recorder: SweepRecorder = recorder or _NoRecorder()
        self._last_known = last_known
        self._checks = checks
        self._service_trackers: dict[ServiceKey, Tracker] = {}
        self._connect = connect
        self._signals = signals
        self._store = store
        self._policy = policy
        self._clock = clock
        self._api: KubeApi | None = None
        self._services: Reflector[SlimService] | None = None
        self._slices: Reflector[SlimSlice] | None = None
        self._nodes: Reflector[bool] | None = None
        self._tracker: Tracker | None = None
        self._last_probe = ApiProbe(reachable=False, error="not probed yet")
        self._last_signals: tuple[Signal, ...] = ()
        self._dirty = asyncio.Event()
        self._listed: tuple[ClusterService, ...] | None = None
        """The exported services as the reflectors last listed them (None: work out again)."""
        self._sweep_now = asyncio.Event()
        self._connect_tried = asyncio.Event()
        self.last_report: ClusterReport | None = None
        self._catalog_failing = False

    # -- watches -------------------------------------------------------------

    def _changed(self) -> None:
        self._listed = None  # a list or watch event changed what the reflectors hold
        self._dirty.set()

    def _unsettled(self) -> bool:
        """Whether a scope is between states (bad or good streaks still counting).

        Then the next sweep comes after a second, not a full interval, so hysteresis
        costs seconds rather than intervals.
        """
        for tracker in (self._tracker, *self._service_trackers.values()):
            if tracker is None:
                return True
            if tracker.health.state.serves and tracker.bad > 0:
                return True
            if not tracker.health.state.serves and tracker.good > 0:
                return True
            if not tracker.health.state.serves and not self._last_probe.reachable:
                return True
        return False

    def _signals_due(self) -> bool:
        # Prometheus scrapes every 15-60 s: reading it every sweep mostly returns the
        # same values, at a thousand clusters' cost.
        waited = time.monotonic() - self._signals_read_at
        if waited >= self._pace.signal_interval:
            return True
        # Between states every sweep's signals count, unless the API is unreachable:
        # then the cluster is down whatever Prometheus says.
        return self._unsettled() and self._last_probe.reachable

    def _probe_services_due(self) -> bool:
        return self._checks.session is not None or bool(self._checks.signals)

    def close(self) -> None:
        """Stop at the next turn of every loop, even if a cancellation is lost.

        A hub stopping a thousand collectors cancels thousands of tasks; under
        Python 3.11 a cancellation that meets a time limit can vanish (see
        `mcobs.waiting`), and one lost cancellation would hold the stop forever.
        """
        self._closed = True
        for reflector in (self._services, self._slices, self._nodes):
            if reflector is not None:
                reflector.close()
        self._sweep_now.set()
        self._dirty.set()
        if self._task is not None:
            self._task.cancel()

    def republish(self) -> None:
        """Write the current report again soon (the catalog lost it)."""
        if self.last_report is not None:
            self._dirty.set()

    def _watch_failed(self, message: str) -> None:
        self._recorder.error(self.identity.name, "watch")
        self._sweep_now.set()

    def _reflector(
        self, api: KubeApi, path: str, convert: Callable[[Mapping[str, Any]], T], kind: str
    ) -> Reflector[T]:
        return Reflector(
            api=api,
            path=path,
            convert=convert,
            on_change=self._changed,
            on_error=self._watch_failed,
            label=f"{self.identity.name} {kind}",
        )

    def _reflectors(
        self, api: KubeApi
    ) -> list[Reflector[SlimService] | Reflector[SlimSlice] | Reflector[bool]]:
        self._services = self._reflector(api, "/api/v1/services", to_service, "services")
        self._slices = self._reflector(
            api, "/apis/discovery.k8s.io/v1/endpointslices", to_slice, "endpointslices"
        )
        self._nodes = self._reflector(api, "/api/v1/nodes", node_ready, "nodes")
        return [self._services, self._slices, self._nodes]

    # -- sweeps --------------------------------------------------------------

    async def _probe(self) -> ApiProbe | None:
        """The API's answer to `/readyz`; None when the hub was too busy to tell."""
        if self._api is None:
            return ApiProbe(reachable=False, error="not connected")
        async with self._probe_slots:
            mark = self._loop_lag.mark() if self._loop_lag else 0.0
            started = time.perf_counter()
            try:
                status, _ = await self._api.get_text("/readyz")
            except (KubeError, aiohttp.ClientError, TimeoutError, OSError) as error:
                if (
                    isinstance(error, TimeoutError)
                    and self._inconclusive < MAX_INCONCLUSIVE
                    and self._hub_stalled_since(mark)
                ):
                    self._inconclusive += 1
                    return None
                return ApiProbe(reachable=False, error=describe(error))
            latency: float | None = time.perf_counter() - started
            if self._hub_stalled_since(mark):
                latency = self._last_probe.latency_s  # this one measured the hub
        self._inconclusive = 0
        nodes = self._nodes
        ready = sum(nodes.items.values()) if nodes and nodes.synced else 0
        total = len(nodes.items) if nodes and nodes.synced else 0
        return ApiProbe(
            reachable=True,
            latency_s=latency,
            readyz_ok=status == 200,
            nodes_ready=ready,
            nodes_total=total,
        )

    def _hub_stalled_since(self, mark: float) -> bool:
        return self._loop_lag is not None and self._loop_lag.worst_since(mark) >= BUSY_STALL

    async def sweep(self) -> ClusterReport:
        """Probe, read signals, assess health, and report; returns the report."""
        started = time.perf_counter()
        report = await self._sweep()
        name = self.identity.name
        self._recorder.sweep(name, time.perf_counter() - started)
        if not report.probe.reachable:
            self._recorder.error(name, "api")
        if any(s.value is None for s in report.signals):
            self._recorder.error(name, "prometheus")
        if self._catalog_failing:
            self._recorder.error(name, "catalog")
        return report

    async def _sweep(self) -> ClusterReport:
        probe: ApiProbe | None
        if self._signals is not None and self._signals_due():
            probe, self._last_signals = await asyncio.gather(self._probe(), self._signals.read())
            self._signals_read_at = time.monotonic()
        else:
            probe = await self._probe()
        if probe is None:  # the hub stalled during the probe: judge at the next sweep
            self._recorder.inconclusive(self.identity.name)
            return self.last_report or self.compose()
        self._last_probe = probe
        if self._probe_services_due():
            await self._check_services()
        if self._tracker is None:
            self._tracker = self._known_tracker()
        before = self._tracker.health.state if self._tracker else None
        raw = observe(probe, self._last_signals, self._policy)
        self._tracker = track(self._tracker, raw, self._clock(), self._policy.hysteresis)
        after = self._tracker.health
        if after.state != before:
            log.log(
                logging.INFO if after.state.serves else logging.WARNING,
                "cluster %s is %s (score %.2f)%s",
                self.identity.name,
                after.state.value,
                after.score,
                ": " + "; ".join(after.reasons) if after.reasons else "",
            )
        return await self._publish(unless_unchanged=True)

    async def _service_health(self, service: ClusterService) -> Health | None:
        """A service's raw health from its probe and signals; None when nothing checks it."""
        options, _ = options_of(service.annotations)
        down: list[str] = []
        degraded: list[str] = []
        info: list[str] = []
        checked = False
        if options.probe and self._checks.session is not None and service.addresses:
            checked = True
            probed, failures = await probe_service(
                self._checks.session, service, options.probe, self._checks.timeout
            )
            if failures and len(failures) >= probed:
                down += [f"probe failed: {f}" for f in failures]
            elif failures:
                degraded += [f"probe failed: {f}" for f in failures]
        wanted = [n for n in options.signals or () if n in self._checks.signals]
        info += [f"signal {n} is not configured" for n in options.signals or () if n not in wanted]
        if wanted:
            checked = True
            if self._signals is None:
                info.append("per-service signals need the cluster's prometheus_url")
            else:
                values = {
                    "namespace": service.key.namespace,
                    "service": service.key.name,
                    "cluster": service.cluster,
                }
                queries = [
                    SignalQuery(n, Template(self._checks.signals[n]).safe_substitute(values))
                    for n in wanted
                ]
                got = judge_signals(await self._signals.read_queries(queries), self._policy.signals)
                down, degraded, info = down + got[0], degraded + got[1], info + got[2]
        return combine(down, degraded, info) if checked or info else None

    async def _check_services(self) -> None:
        current = [s for s in self.compose().services if _asks_for_checks(s)]
        raws = await asyncio.gather(*(self._service_health(s) for s in current))
        now = self._clock()
        trackers: dict[ServiceKey, Tracker] = {}
        for service, raw in zip(current, raws, strict=True):
            if raw is not None:
                previous = self._service_trackers.get(service.key)
                trackers[service.key] = track(previous, raw, now, self._policy.hysteresis)
        self._service_trackers = trackers

    def _known_tracker(self) -> Tracker | None:
        """The catalog's word on a cluster that served, as the start of its history.

        A hub that restarts, or a replica that takes a cluster over, then needs
        `down_after` bad sweeps to take it down, as the previous collector did,
        rather than one slow first sweep."""
        known = self._last_known(self.identity.name) if self._last_known else None
        if known is None or not known.health.state.serves:
            return None
        return Tracker(known.health, since=self._clock())

    def _exported(self) -> tuple[ClusterService, ...]:
        """This cluster's exported services; until both lists have succeeded once, the
        ones the catalog already holds (a restarted hub that cannot reach a cluster must
        not erase what every replica knows of it)."""
        services, slices = self._services, self._slices
        if not (services and services.listed_once and slices and slices.listed_once):
            known = self._last_known(self.identity.name) if self._last_known else None
            return known.services if known is not None else ()
        if self._listed is None:  # worked out once per change, not once per sweep
            self._listed = cluster_services(
                self.identity.name, services.items.values(), slices.items.values()
            )
        return self._listed

    def compose(self) -> ClusterReport:
        services, slices = self._services, self._slices
        exported = self._exported()
        trackers = self._service_trackers
        return ClusterReport(
            cluster=self.identity.name,
            region=self.identity.region,
            observed_at=self._clock(),
            probe=self._last_probe,
            health=self._tracker.health if self._tracker else UNKNOWN_HEALTH,
            services=tuple(
                replace(s, health=trackers[s.key].health) if s.key in trackers else s
                for s in exported
            ),
            signals=self._last_signals,
            weight=self.identity.weight,
            priority=self.identity.priority,
            labels=self.identity.labels,
            services_synced=bool(services and services.synced and slices and slices.synced),
        )

    @staticmethod
    def _content(report: ClusterReport) -> ClusterReport:
        """A report without what changes every sweep (time, API latency)."""
        return replace(report, observed_at=0.0, probe=replace(report.probe, latency_s=None))

    async def _publish(self, *, unless_unchanged: bool = False) -> ClusterReport:
        """Write the current report. A sweep that changed nothing writes nothing, or
        every `stale_after / 3` seconds a heartbeat, which no reader reloads for; so a
        quiet fleet costs few writes and every replica few reloads."""
        report = self.compose()
        previous = self.last_report
        unchanged = (
            unless_unchanged
            and previous is not None
            and not self._catalog_failing
            and self._content(report) == self._content(previous)
        )
        since_write = report.observed_at - previous.observed_at if previous else 0.0
        if unchanged and previous is not None and since_write < self._policy.stale_after / 3:
            return previous
        try:
            if not (unchanged and await self._store.heartbeat(report.cluster, report.observed_at)):
                await self._store.put(report)
        except CatalogUnavailable as error:
            if not self._catalog_failing:
                log.warning("%s: catalog unavailable, will retry: %s", report.cluster, error)
            self._catalog_failing = True
            self._dirty.set()
        else:
            if self._catalog_failing:
                log.info("%s: catalog reachable again, report written", report.cluster)
            self._catalog_failing = False
        self.last_report = report
        return report

    # -- loops ---------------------------------------------------------------

    async def run(self) -> None:
        """Collect until cancelled or closed."""
        self._task = asyncio.current_task()
        self._pace.join()
        try:
            await asyncio.sleep(self._start_delay)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._watch_loop())
                tasks.create_task(self._sweep_loop())
                tasks.create_task(self._publish_loop())
        finally:
            self._pace.leave()

    async def _watch_loop(self) -> None:
        while True:
            stop_if_cancelled(self._closed)
            try:
                self._api = await self._connect()
            except CredentialsError as error:
                log.error("%s: %s", self.identity.name, error)
                self._recorder.error(self.identity.name, "credentials")
                self._last_probe = ApiProbe(reachable=False, error=str(error))
                self._connect_tried.set()
                await asyncio.sleep(CREDENTIALS_RETRY)
                continue
            self._connect_tried.set()
            async with asyncio.TaskGroup() as tasks:
                for reflector in self._reflectors(self._api):
                    tasks.create_task(reflector.run())

    async def _sweep_loop(self) -> None:
        with contextlib.suppress(TimeoutError):
            await wait_event(self._connect_tried, CONNECT_GRACE)
        while True:
            stop_if_cancelled(self._closed)
            await self.sweep()
            interval = self._pace.sweep_interval
            delay = RETRY_AFTER_FAILURE if self._unsettled() else interval
            with contextlib.suppress(TimeoutError):
                await wait_event(self._sweep_now, min(delay, interval))
            self._sweep_now.clear()
            await asyncio.sleep(MIN_SWEEP_GAP)

    async def _publish_loop(self) -> None:
        while True:
            stop_if_cancelled(self._closed)
            await self._dirty.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            self._dirty.clear()
            if self._tracker is not None:
                await self._publish()
            if self._catalog_failing or self._tracker is None:
                await asyncio.sleep(RETRY_AFTER_FAILURE)
