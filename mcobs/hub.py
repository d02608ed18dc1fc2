"""The hub: collectors -> catalog -> zone plan -> DNS and HTTP, wired together.

`Hub` owns the long-running tasks. Each piece is built by the caller (the CLI,
a test) and passed in, so tests can swap any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from mcobs.answer import ZoneBuilder, ZonePlan, ZonePolicy
from mcobs.api.app import make_app
from mcobs.api.control import control_routes
from mcobs.api.openapi import openapi_routes
from mcobs.api.tls import TlsError, server_context
from mcobs.catalog.store import CatalogStore, CatalogWatcher
from mcobs.collect.cluster import (
    ClusterCollector,
    ClusterIdentity,
    ServiceChecks,
    SweepRecorder,
)
from mcobs.collect.credentials import load_credentials
from mcobs.collect.kubeapi import KubeApi, new_session
from mcobs.collect.pace import SweepPace
from mcobs.collect.prom import PrometheusSignals, SignalQuery
from mcobs.config import ClusterSettings, ConfigError, Settings
from mcobs.decide.decider import Decider
from mcobs.decide.events import EventLog
from mcobs.decide.lease import Lease, default_holder
from mcobs.decide.routes import event_routes
from mcobs.dnsserver import RateLimit
from mcobs.dnsserver.server import DnsServer
from mcobs.dnsserver.stats import StatsSnapshot
from mcobs.geo import IPAddress, Locator, build_locator
from mcobs.grafana.annotate import Annotator, grafana_annotator
from mcobs.health import HealthPolicy, Hysteresis, SignalBounds
from mcobs.heap import freeze_long_lived
from mcobs.looplag import LoopLag
from mcobs.metrics import ReplicaStats, install_metrics, metrics_route
from mcobs.model import EMPTY_SNAPSHOT, CatalogSnapshot, ClusterReport
from mcobs.notify.api import webhook_routes
from mcobs.notify.memory import MemoryOutboxStore
from mcobs.notify.outbox import Outbox
from mcobs.notify.settings import consumers
from mcobs.notify.stats import DeliveryStats
from mcobs.notify.store import OutboxStore
from mcobs.query import Fanout, FanoutSettings, query_routes
from mcobs.shard.manager import ShardManager
from mcobs.shard.routes import ShardView, shard_routes
from mcobs.shard.tasks import OwnedTasks
from mcobs.status import status_routes
from mcobs.tlsmemory import shrink_tls_read_buffers
from mcobs.waiting import wait_event
from mcobs.zone import Nameserver, ZoneView

log = logging.getLogger(__name__)

MAX_REPLAN_DELAY = 5.0
SLOW_BUILD_SECONDS = 0.05
BUILD_SLICE_SECONDS = 0.02
"""A build gives the event loop a turn this often: planning a thousand clusters' changes
takes seconds, and DNS, probes and Redis replies must not wait that long."""
STOP_ROUND_SECONDS = 1.0
HTTP_SHUTDOWN_SECONDS = 2.0
PROMETHEUS_THREADS = 8
STARTS_PER_SECOND = 100
PROBES_IN_FLIGHT = 64


def zone_policy(settings: Settings) -> ZonePolicy:
    return ZonePolicy(
        origin=settings.zone,
        nameservers=tuple(Nameserver(ns.name, ns.addresses) for ns in settings.nameservers),
        default_ttl=settings.dns.default_ttl,
        negative_ttl=settings.dns.negative_ttl,
        stale_after=settings.collect.stale_after,
        hostmaster=settings.dns.hostmaster,
        strategy=settings.dns.strategy,
        max_answers=settings.dns.max_answers,
        min_healthy_percent=settings.dns.min_healthy_percent,
        last_resort=settings.dns.last_resort,
        regions=tuple(sorted({*settings.geo.regions, *(c.region for c in settings.clusters)})),
        distance=settings.geo.distances,
    )


def rate_limit(settings: Settings) -> RateLimit | None:
    limit = settings.dns.rate_limit
    if not limit.enabled:
        return None
    return RateLimit(
        responses_per_second=limit.responses_per_second,
        window=limit.window,
        slip=limit.slip,
        ipv4_prefix=limit.ipv4_prefix,
        ipv6_prefix=limit.ipv6_prefix,
        exempt=limit.exempt,
    )


def locator(settings: Settings) -> Locator | None:
    geo = settings.geo
    return build_locator(geo.cidrs, geo.maxmind, countries=geo.countries, continents=geo.continents)


def health_policy(settings: Settings) -> HealthPolicy:
    collect = settings.collect
    return HealthPolicy(
        hysteresis=Hysteresis(
            down_after=collect.down_after_failures,
            up_after=collect.up_after_successes,
            min_down_seconds=collect.min_down_seconds,
            flap_limit=collect.flap_limit,
            flap_window=collect.flap_window,
            hold_down=collect.hold_down,
        ),
        stale_after=collect.stale_after,
        slow_api_seconds=collect.slow_api_seconds,
        signals={
            s.name: SignalBounds(s.healthy_min, s.healthy_max, s.down_min, s.down_max)
            for s in (*collect.signals, *collect.service_signals)
        },
    )


def catalog_watcher(
    store: CatalogStore, settings: Settings, on_change: Callable[[CatalogSnapshot], None]
) -> CatalogWatcher:
    """A watcher that also polls often enough to see heartbeats, which wake no reader:
    they are written every stale_after / 3, so a live cluster never looks stale."""
    return CatalogWatcher(
        store, on_change=on_change, poll_interval=min(5.0, settings.collect.stale_after / 6)
    )


class Planner:
    """Keeps the zone plan in step with the catalog and with the clock (staleness).

    Two guards keep DNS answering through a catalog that lost data (a Redis
    restart without persistence): a cluster missing from a new snapshot keeps
    its last report until that report turns stale, and the SOA serial is the
    planner's own, growing with every change of the records, never with the
    catalog's version counter (which restarts with an empty Redis).

    While `run` runs, it builds the plans, spacing slow builds (see `_publish`);
    otherwise (tools, tests) `on_snapshot` builds at once. Builds stay on the
    event loop: in a thread, a build holding the GIL would make every socket
    call of the loop wait for it in turn, which stalls an I/O-heavy loop far
    longer than the build itself. A long build pauses every
    `BUILD_SLICE_SECONDS` instead, between two services.
    """

    def __init__(self, policy: ZonePolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self.on_plan: Callable[[CatalogSnapshot, ZonePlan], None] | None = None
        """Called with every new plan once a catalog snapshot is loaded (the decider's)."""
        self.snapshot: CatalogSnapshot = EMPTY_SNAPSHOT
        self._serial = max(1, int(clock()) % 2**32)
        self._builder = ZoneBuilder(policy)
        empty = self._builder.build(EMPTY_SNAPSHOT, clock(), self._serial).view
        self.plan = ZonePlan(ZoneView.not_loaded(empty.origin, empty.soa, empty.nameservers))
        self.loaded = False
        self._running = False
        self._kick = asyncio.Event()
        self._wanted = False
        self._cool_until = 0.0
        self._building = False
        self.builds = 0
        self.build_seconds = 0.0

    def on_snapshot(self, snapshot: CatalogSnapshot) -> None:
        self.snapshot = self._carry_over(snapshot)
        self.loaded = True
        if self._running:
            self._wanted = True  # `run` builds it, after the cool-down of a slow build
            self._kick.set()
        else:
            self.replan()

    def _carry_over(self, snapshot: CatalogSnapshot) -> CatalogSnapshot:
        now = self._clock()
        missing = {
            name: report
            for name, report in self.snapshot.reports.items()
            if name not in snapshot.reports and now - report.observed_at <= self._policy.stale_after
        }
        if not missing:
            return snapshot
        log.warning(
            "catalog lost %d cluster(s) (%s); serving their last reports until they turn stale",
            len(missing),
            ", ".join(sorted(missing)),
        )
        return replace(snapshot, reports=MappingProxyType({**missing, **snapshot.reports}))

    def replan(self) -> None:
        """Build a plan of the current snapshot now (or, while `run` is part way through
        a build, right after it)."""
        if self._building:
            self._wanted = True
            self._kick.set()
        elif self.loaded:  # until the first snapshot, keep answering SERVFAIL
            self._publish(*self._build())

    def _build(self) -> tuple[CatalogSnapshot, ZonePlan, float]:
        snapshot, now = self.snapshot, self._clock()
        started = time.perf_counter()
        plan = self._builder.build(snapshot, now, self._serial)
        return snapshot, plan, time.perf_counter() - started

    async def _build_in_slices(self) -> tuple[CatalogSnapshot, ZonePlan, float]:
        """`_build`, letting the loop run every `BUILD_SLICE_SECONDS`; `took` counts
        only the time spent building."""
        snapshot, now = self.snapshot, self._clock()
        steps = self._builder.build_steps(snapshot, now, self._serial)
        took = 0.0
        self._building = True
        try:
            while True:
                started = time.perf_counter()
                try:
                    while time.perf_counter() - started < BUILD_SLICE_SECONDS:
                        next(steps)
                except StopIteration as done:
                    return snapshot, done.value, took + time.perf_counter() - started
                took += time.perf_counter() - started
                await asyncio.sleep(0)
        finally:
            self._building = False

    def _publish(self, snapshot: CatalogSnapshot, plan: ZonePlan, took: float) -> None:
        self.builds += 1
        self.build_seconds += took
        # Backpressure: after a slow build the next waits as long again, so planning
        # takes at most half the CPU however fast the catalog changes (a thousand
        # clusters starting), and changes arriving meanwhile share one build. (Resting
        # longer saves start-up CPU but delays the next change's answer as much.)
        rest = took if took >= SLOW_BUILD_SECONDS else 0.0
        self._cool_until = time.perf_counter() + rest
        if plan.view == self.plan.view:
            # Same records: keep the old view object so the DNS answer cache survives.
            plan = ZonePlan(self.plan.view, plan.services)
        else:
            self._serial = max(self._serial + 1, int(self._clock())) % 2**32 or 1
            view = plan.view
            plan = ZonePlan(
                replace(view, soa=replace(view.soa, serial=self._serial)), plan.services
            )
        self.plan = plan
        self._kick.set()
        if self.on_plan is not None:
            try:
                self.on_plan(snapshot, plan)
            except Exception:
                log.exception("on_plan callback failed")

    def _next_stale_in(self) -> float:
        now = self._clock()
        deadlines = [
            r.observed_at + self._policy.stale_after - now
            for r in self.snapshot.reports.values()
            if r.observed_at + self._policy.stale_after > now
        ]
        return min([MAX_REPLAN_DELAY, *deadlines])

    async def run(self) -> None:
        """Build plans: for each new snapshot (after the cool-down of a slow build), and
        when a report turns stale even if nothing else changes."""
        self._running = True
        try:
            while True:
                self._kick.clear()
                if self._wanted:
                    delay = self._cool_until - time.perf_counter()
                else:
                    delay = max(0.05, self._next_stale_in())
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await wait_event(self._kick, delay)
                    if self._kick.is_set():
                        continue  # a new snapshot or a build meanwhile: look again
                if not self.loaded:
                    continue
                self._wanted = False
                self._publish(*await self._build_in_slices())
        finally:
            self._running = False


class HubState:
    """The read side the HTTP API sees (implements `mcobs.api.app.HubView`)."""

    def __init__(
        self,
        planner: Planner,
        stale_after: float,
        clock: Callable[[], float],
        locator: Locator | None = None,
    ) -> None:
        self._planner = planner
        self._stale_after = stale_after
        self._clock = clock
        self._locator = locator

    def locate(self, address: IPAddress) -> str | None:
        return self._locator(address) if self._locator is not None else None

    @property
    def ready(self) -> bool:
        return self._planner.loaded

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self._planner.snapshot

    @property
    def plan(self) -> ZonePlan:
        return self._planner.plan

    @property
    def stale_after(self) -> float:
        return self._stale_after

    def now(self) -> float:
        return self._clock()


def build_collectors(
    settings: Settings,
    store: CatalogStore,
    session: aiohttp.ClientSession,
    executor: Executor,
    clock: Callable[[], float],
    on_close: list[Callable[[], None]],
    recorder: SweepRecorder | None = None,
    last_known: Callable[[str], ClusterReport | None] | None = None,
    probe_slots: asyncio.Semaphore | None = None,
    loop_lag: LoopLag | None = None,
    pace: SweepPace | None = None,
) -> list[ClusterCollector]:
    """One collector per configured cluster; cleanups for their clients go to `on_close`."""
    policy = health_policy(settings)
    queries = [SignalQuery(s.name, s.query) for s in settings.collect.signals]
    timeout = settings.collect.timeout
    checks = ServiceChecks(
        session=session if settings.collect.probes else None,
        signals={s.name: s.query for s in settings.collect.service_signals},
        timeout=timeout,
    )

    def connector(cluster: ClusterSettings) -> Callable[[], Awaitable[KubeApi]]:
        async def connect() -> KubeApi:
            credentials = await asyncio.to_thread(
                load_credentials, cluster.kubeconfig, cluster.context, cluster.in_cluster
            )
            return KubeApi(session, credentials, timeout)

        return connect

    collectors = []
    for cluster in settings.clusters:
        signals = None
        if cluster.prometheus_url and (queries or checks.signals):
            signals = PrometheusSignals(
                str(cluster.prometheus_url), queries, timeout, executor, session
            )
            on_close.append(signals.close)
        identity = ClusterIdentity(
            cluster.name, cluster.region, cluster.weight, cluster.priority, dict(cluster.labels)
        )
        collectors.append(
            ClusterCollector(
                identity=identity,
                connect=connector(cluster),
                signals=signals,
                store=store,
                policy=policy,
                interval=settings.collect.interval,
                clock=clock,
                checks=checks,
                recorder=recorder,
                last_known=last_known,
                signal_interval=settings.collect.signal_interval,
                start_delay=start_offset(cluster.name, len(settings.clusters)),
                probe_slots=probe_slots,
                loop_lag=loop_lag,
                pace=pace,
            )
        )
    return collectors


def sweep_pace(settings: Settings) -> SweepPace:
    """One pace for all of a replica's collectors (see `mcobs.collect.pace`)."""
    collect = settings.collect
    return SweepPace(
        collect.interval,
        collect.signal_interval,
        max_sweeps=collect.max_sweeps_per_second,
        max_signal_reads=collect.max_signal_reads_per_second,
        longest=collect.stale_after / 3,
    )


def start_offset(cluster: str, clusters: int) -> float:
    """When a cluster's collector starts, in seconds: a fleet starts at most
    `STARTS_PER_SECOND` clusters a second, each at a fixed place (from its name)."""
    spread = clusters / STARTS_PER_SECOND
    return spread * (zlib.crc32(cluster.encode()) % 1000) / 1000


class _Collecting:
    """A collector and the clients only it uses, closed when it stops."""

    def __init__(self, collector: ClusterCollector, closers: list[Callable[[], None]]) -> None:
        self.collector = collector
        self._closers = closers

    async def run(self) -> None:
        try:
            await self.collector.run()
        finally:
            for close in self._closers:
                close()

    def close(self) -> None:
        self.collector.close()


class Hub:
    """Runs collectors, the catalog watcher, the planner, DNS and HTTP until stopped.

    `async with Hub(...) as hub:` starts everything; leaving the block stops it.
    """

    def __init__(
        self,
        settings: Settings,
        store: CatalogStore,
        *,
        extra_routes: Sequence[web.AbstractRouteDef] = (),
        clock: Callable[[], float] = time.time,
        collect: bool = True,
        token: str | None = None,
        open_mutations: bool = False,
        outbox_store: OutboxStore | None = None,
        lease: Lease | None = None,
        events: EventLog | None = None,
        shard: ShardManager | None = None,
    ) -> None:
        self.settings = settings
        self.shard = shard
        # How the API names this replica: its shard member id, else its decision lease's.
        if shard is not None:
            self.replica_id = shard.replica_id
        elif lease is not None:
            self.replica_id = lease.holder
        else:
            self.replica_id = default_holder()
        self._owned: OwnedTasks[_Collecting] | None = None
        self._lease = lease
        self._events = events
        self.decider: Decider | None = None
        self.registry = CollectorRegistry()
        self._outbox_store = outbox_store if outbox_store is not None else MemoryOutboxStore()
        self._token = token
        self._open_mutations = open_mutations
        self.store = store
        self.clock = clock
        self.planner = Planner(zone_policy(settings), clock)
        self.locator = locator(settings)
        self.state = HubState(self.planner, settings.collect.stale_after, clock, self.locator)
        self.metrics = install_metrics(
            self.state, self._dns_stats, self.registry, replica=self._replica_stats
        )
        self.annotator: Annotator | None = None
        self._extra_routes = extra_routes
        self._collect = collect
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._all_collectors: list[ClusterCollector] = []
        self.dns: DnsServer | None = None
        self.http_port = 0
        self._stopped = asyncio.Event()

    @property
    def dns_port(self) -> int:
        assert self.dns is not None
        return self.dns.port

    async def __aenter__(self) -> Hub:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        stack = self._stack
        watcher = catalog_watcher(self.store, self.settings, self._on_snapshot)
        watcher.start()
        stack.push_async_callback(watcher.stop)

        self.dns = DnsServer(
            lambda: self.planner.plan.view,
            self.settings.dns.host,
            self.settings.dns.port,
            rate_limit=rate_limit(self.settings),
            locate=self.locator,
            reuse_port=self.settings.dns.workers > 1,
            observe=self.metrics.dns_latency.observe,
        )
        await self.dns.start()
        stack.push_async_callback(self.dns.stop)

        self.outbox = Outbox(
            self._outbox_store,
            consumers(self.settings.webhooks, self.settings.webhook_defaults),
            clock=self.clock,
            stats=DeliveryStats(self.registry),
        )
        await stack.enter_async_context(self.outbox)

        query_session = new_session()
        stack.push_async_callback(query_session.close)
        query = self.settings.query
        fanout = Fanout(
            query_session,
            lambda: {
                c.name: str(c.prometheus_url) for c in self.settings.clusters if c.prometheus_url
            },
            settings=FanoutSettings(query.cluster_timeout, query.deadline, query.concurrency),
            clock=self.clock,
        )
        grafana = self.settings.grafana
        if grafana is not None:
            token = grafana.token_file.read_text(encoding="utf-8").strip()
            self.annotator = grafana_annotator(str(grafana.url), token)
            self.annotator.start()
            stack.push_async_callback(self.annotator.stop)
        routes = [
            metrics_route(self.registry),
            *openapi_routes(),
            *shard_routes(self.shard_view),
            *query_routes(fanout),
            *webhook_routes(self.outbox),
            *control_routes(
                self.store,
                lambda: self.planner.snapshot,
                self.clock,
                self.settings.alerts.down_severities,
            ),
            *self._extra_routes,
        ]
        if self._lease is not None and self._events is not None:
            self.decider = Decider(
                self._lease,
                self._events,
                stale_after=self.settings.collect.stale_after,
                sinks=[
                    self.outbox.enqueue,
                    self.metrics.decisions.record,
                    *([self.annotator.record] if self.annotator else []),
                ],
                clock=self.clock,
            )
            self.planner.on_plan = self.decider.on_plan
            routes += event_routes(self._events, self._lease)
        closing = asyncio.Event()
        routes += status_routes(
            self.state, self._events if self._lease is not None else None, closing=closing
        )
        app = make_app(
            self.state,
            routes,
            token=self._token,
            open_mutations=self._open_mutations,
            protect_reads=self.settings.http.protect_reads,
        )
        # Open event streams (status pages) must not hold a stop for aiohttp's default 60 s.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=HTTP_SHUTDOWN_SECONDS)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        stack.callback(closing.set)  # runs first: open status pages end before the server waits
        site = web.TCPSite(
            runner, self.settings.http.host, self.settings.http.port, ssl_context=self._tls()
        )
        await site.start()
        self.http_port = runner.addresses[0][1]

        self._spawn(self.planner.run(), "planner")
        if self.decider is not None:
            self._spawn(self.decider.run(), "decider")
            if self.planner.loaded:
                self.planner.replan()  # a snapshot loaded before on_plan was set
        loop_lag = LoopLag(on_tick=self.metrics.collectors.loop_late)
        self._spawn(loop_lag.run(), "event loop lag")
        self._spawn(freeze_long_lived(), "heap freeze")
        if self._collect:
            shrink_tls_read_buffers()
            session = new_session()
            stack.push_async_callback(session.close)
            executor = ThreadPoolExecutor(max_workers=PROMETHEUS_THREADS, thread_name_prefix="prom")
            probe_slots = asyncio.Semaphore(PROBES_IN_FLIGHT)
            pace = sweep_pace(self.settings)
            stack.callback(executor.shutdown, wait=False, cancel_futures=True)
            if self.shard is None:
                closers: list[Callable[[], None]] = []
                self._all_collectors = build_collectors(
                    self.settings,
                    self.store,
                    session,
                    executor,
                    self.clock,
                    closers,
                    self.metrics.collectors,
                    self._last_known,
                    probe_slots,
                    loop_lag,
                    pace,
                )
                for close in closers:
                    stack.callback(close)
                for collector in self._all_collectors:
                    self._spawn(collector.run(), f"collector {collector.identity.name}")
            else:
                clusters = {c.name: c for c in self.settings.clusters}

                def start(name: str) -> _Collecting | None:
                    # A fresh collector each time this replica gains the cluster.
                    cluster = clusters.get(name)
                    if cluster is None:
                        return None
                    one = self.settings.model_copy(update={"clusters": (cluster,)})
                    closers: list[Callable[[], None]] = []
                    built = build_collectors(
                        one,
                        self.store,
                        session,
                        executor,
                        self.clock,
                        closers,
                        self.metrics.collectors,
                        self._last_known,
                        probe_slots,
                        loop_lag,
                        pace,
                    )
                    # Once another replica collects it, this one's series would mislead.
                    forget = functools.partial(self.metrics.collectors.forget, name)
                    return _Collecting(built[0], [*closers, forget])

                self._owned = OwnedTasks(start)
                self.shard.on_change = self._owned.update
                stack.push_async_callback(self._owned.stop)  # after the shard task ends
                self._spawn(self.shard.run(), "shard")
        stack.push_async_callback(self._cancel_tasks)

    @property
    def collectors(self) -> list[ClusterCollector]:
        """The collectors running in this replica (with sharding: the owned clusters')."""
        if self._owned is not None:
            return [c.collector for c in self._owned.running.values()]
        return self._all_collectors

    def shard_view(self) -> ShardView:
        """Which clusters this replica collects now, and the replicas it shares them with."""
        if self.shard is not None:
            return ShardView.of(self.shard)
        names = [c.name for c in self.settings.clusters]
        return ShardView.unsharded(self.replica_id, names if self._collect else (), len(names))

    def _replica_stats(self) -> ReplicaStats:
        view = self.shard_view()
        leader = self.decider is not None and self.decider.is_leader
        return ReplicaStats(len(view.clusters), len(view.members), leader)

    def _tls(self) -> ssl.SSLContext | None:
        tls = self.settings.http.tls
        if tls is None:
            return None
        try:
            return server_context(tls.cert_file, tls.key_file)
        except TlsError as error:
            raise ConfigError("http.tls", error.problems) from None

    def _last_known(self, cluster: str) -> ClusterReport | None:
        return self.planner.snapshot.reports.get(cluster)

    def _dns_stats(self) -> StatsSnapshot | None:
        return self.dns.stats.snapshot() if self.dns is not None else None

    def _on_snapshot(self, snapshot: CatalogSnapshot) -> None:
        self.planner.on_snapshot(snapshot)
        self.metrics.catalog_lag.snapshot_applied(snapshot, self.clock())
        for collector in self.collectors:
            if collector.identity.name not in snapshot.reports:
                # The catalog lost this cluster (e.g. Redis restarted empty): write it again.
                collector.republish()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())
            self._stopped.set()

    async def _cancel_tasks(self) -> None:
        for collector in self.collectors:
            collector.close()  # a lost cancellation must not hold the stop
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=STOP_ROUND_SECONDS)
            if pending:
                log.warning("%d task(s) still stopping; cancelling again", len(pending))
        self._tasks.clear()

    def stop(self) -> None:
        """Ask `wait` to return (signal handlers call this)."""
        self._stopped.set()

    async def wait(self) -> None:
        """Until `stop` is called or a background task fails."""
        await self._stopped.wait()
