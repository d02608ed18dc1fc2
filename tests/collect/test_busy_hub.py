"""A hub whose event loop stalls does not blame its clusters for its own slowness."""

from __future__ import annotations

from typing import Any

from mcobs.catalog.memory import MemoryCatalog
from mcobs.collect.cluster import BUSY_STALL, MAX_INCONCLUSIVE, ClusterCollector, ClusterIdentity
from mcobs.collect.kubeapi import KubeApi
from mcobs.health import HealthPolicy
from mcobs.looplag import LoopLag
from mcobs.model import HealthState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowApi:
    """A /readyz that answers at once, or times out."""

    def __init__(self) -> None:
        self.times_out = False

    async def get_text(self, path: str) -> tuple[int, str]:
        if self.times_out:
            raise TimeoutError
        return 200, "ok"


class Recorder:
    def __init__(self) -> None:
        self.inconclusive_probes = 0
        self.errors: list[str] = []

    def sweep(self, cluster: str, seconds: float) -> None:
        pass

    def error(self, cluster: str, kind: str) -> None:
        self.errors.append(kind)

    def inconclusive(self, cluster: str) -> None:
        self.inconclusive_probes += 1


class Hub:
    """One collector with a fake clock, loop-lag monitor, API and recorder."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.lag = LoopLag(clock=self.clock)
        self.api = SlowApi()
        self.recorder = Recorder()
        self.collector = collector(self.lag, self.api, self.recorder)


def collector(lag: LoopLag, api: Any, recorder: Recorder) -> ClusterCollector:
    async def connect() -> KubeApi:
        return api  # type: ignore[no-any-return]

    made = ClusterCollector(
        identity=ClusterIdentity("eu-west", "europe-west"),
        connect=connect,
        signals=None,
        store=MemoryCatalog(),
        policy=HealthPolicy(),
        interval=1.0,
        recorder=recorder,
        loop_lag=lag,
    )
    made._api = api
    return made


def test_the_lag_monitor_sees_past_stalls_and_the_one_going_on() -> None:
    clock = Clock()
    lag = LoopLag(tick=0.1, keep=10.0, clock=clock)
    mark = lag.mark()
    clock.now += 0.1
    lag.record(clock.now, 0.002)
    assert lag.worst_since(mark) == 0.002
    clock.now += 0.9
    lag.record(clock.now, 0.8)  # a stall that ended
    assert lag.worst_since(mark) == 0.8
    assert lag.worst_since(clock.now + 0.01) == 0.0  # ... before a later request began
    lag._due = clock.now + 0.1
    clock.now += 2.1  # a stall going on: the tick is 2 s overdue
    assert lag.worst_since(clock.now) >= 2.0
    clock.now += 20
    lag.record(clock.now, 0.0)
    assert len(lag._ticks) == 1  # history is bounded


async def test_a_probe_that_times_out_while_the_hub_stalls_is_inconclusive() -> None:
    hub = Hub()
    clock, lag, api, recorder, healthy = hub.clock, hub.lag, hub.api, hub.recorder, hub.collector
    await healthy.sweep()
    await healthy.sweep()
    assert healthy.compose().health.state is HealthState.HEALTHY

    api.times_out = True
    lag.record(clock.now, BUSY_STALL * 2)  # the hub's own loop stalled meanwhile
    for _ in range(MAX_INCONCLUSIVE):
        report = await healthy.sweep()
        assert report.health.state is HealthState.HEALTHY
    assert recorder.inconclusive_probes == MAX_INCONCLUSIVE
    assert "api" not in recorder.errors

    # A busy hub delays noticing an outage; it never hides one.
    for _ in range(2):
        report = await healthy.sweep()
    assert report.health.state is HealthState.DOWN
    assert report.health.reasons == ("API unreachable: timed out",)


async def test_a_time_out_on_a_calm_hub_counts_at_once() -> None:
    hub = Hub()
    clock, lag, api, recorder, calm = hub.clock, hub.lag, hub.api, hub.recorder, hub.collector
    await calm.sweep()
    api.times_out = True
    lag.record(clock.now, BUSY_STALL / 10)  # ordinary jitter
    await calm.sweep()
    report = await calm.sweep()
    assert report.health.state is HealthState.DOWN
    assert recorder.inconclusive_probes == 0


async def test_a_latency_measured_during_a_stall_is_not_the_clusters() -> None:
    hub = Hub()
    clock, lag, busy = hub.clock, hub.lag, hub.collector
    await busy.sweep()
    measured = busy.compose().probe.latency_s
    assert measured is not None and measured < 1.0
    lag._due = clock.now - 5.0  # a 5 s stall going on while the next probe runs
    await busy.sweep()
    assert busy.compose().probe.latency_s == measured
    assert "API slower" not in "; ".join(busy.compose().health.reasons)
