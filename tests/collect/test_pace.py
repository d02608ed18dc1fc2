"""A replica with many clusters sweeps each less often, within a rate it can afford."""

from __future__ import annotations

from mcobs.collect.pace import SweepPace
from mcobs.config import ClusterSettings, CollectSettings, Settings
from mcobs.hub import sweep_pace


def test_a_small_fleet_keeps_the_configured_intervals() -> None:
    pace = SweepPace(3.0, 15.0, max_sweeps=100, max_signal_reads=50, longest=10.0)
    for _ in range(300):
        pace.join()
    assert (pace.sweep_interval, pace.signal_interval) == (3.0, 15.0)


def test_a_big_fleet_stretches_both_to_the_rates_and_gets_them_back_as_it_shrinks() -> None:
    pace = SweepPace(3.0, 15.0, max_sweeps=100, max_signal_reads=50, longest=10.0)
    for _ in range(1000):
        pace.join()
    assert pace.sweep_interval == 10.0  # 1,000 clusters / 100 probes a second
    assert pace.signal_interval == 20.0  # 1,000 clusters / 50 reads a second
    for _ in range(700):
        pace.leave()  # other replicas took most of the clusters over
    assert (pace.sweep_interval, pace.signal_interval) == (3.0, 15.0)


def test_the_sweep_interval_never_stretches_past_what_heartbeats_need() -> None:
    pace = sweep_pace_for(clusters=5000)
    assert pace.sweep_interval == CollectSettings().stale_after / 3
    assert pace.signal_interval == 5000 / CollectSettings().max_signal_reads_per_second


def sweep_pace_for(clusters: int) -> SweepPace:
    one = ClusterSettings(name="eu-west", region="europe")
    settings = Settings(zone="global.example.com", clusters=(one,))
    pace = sweep_pace(settings)
    for _ in range(clusters):
        pace.join()
    return pace
