"""Health from observations, steadied by hysteresis, dwell time and flap damping."""

from __future__ import annotations

from dataclasses import replace

from mcobs.health import (
    HealthPolicy,
    Hysteresis,
    SignalBounds,
    Tracker,
    effective_health,
    observe,
    track,
)
from mcobs.model import ApiProbe, Health, HealthState, Signal

from .factories import report

POLICY = HealthPolicy(
    slow_api_seconds=1.0, signals={"targets_up": SignalBounds(healthy_min=0.9, down_min=0.2)}
)
OK = ApiProbe(reachable=True, latency_s=0.02, readyz_ok=True, nodes_ready=3, nodes_total=3)
LOST = ApiProbe(reachable=False, error="cannot connect: Connection refused")
H = Hysteresis(
    down_after=2, up_after=2, min_down_seconds=5, flap_limit=3, flap_window=60, hold_down=120
)
GOOD = observe(OK, [], POLICY)
BAD = observe(LOST, [], POLICY)


def run(observations: list[tuple[float, Health]], tracker: Tracker | None = None) -> list[Tracker]:
    """Feed (time, raw health) pairs; the trackers after each."""
    out = []
    for now, raw in observations:
        tracker = track(tracker, raw, now, H)
        out.append(tracker)
    return out


def states(trackers: list[Tracker]) -> list[str]:
    return [t.health.state.value for t in trackers]


def test_observations_become_a_score_and_reasons() -> None:
    assert observe(OK, [Signal("targets_up", 1.0)], POLICY) == Health(1.0, HealthState.HEALTHY)
    assert (
        Health(0.0, HealthState.DOWN, ("API unreachable: cannot connect: Connection refused",))
        == BAD
    )
    degraded = observe(OK, [Signal("targets_up", 0.5)], POLICY)
    assert degraded == Health(0.5, HealthState.DEGRADED, ("signal targets_up = 0.5 < 0.9",))
    assert observe(OK, [Signal("targets_up", 0.1)], POLICY).state is HealthState.DOWN
    missing = observe(OK, [Signal("targets_up", None, "timed out")], POLICY)
    assert missing == Health(
        1.0, HealthState.HEALTHY, ("signal targets_up unavailable: timed out",)
    )


def test_nodes_readyz_and_latency() -> None:
    no_nodes = ApiProbe(
        reachable=True, latency_s=0.01, readyz_ok=True, nodes_ready=0, nodes_total=3
    )
    assert observe(no_nodes, [], POLICY).state is HealthState.DOWN
    some = ApiProbe(reachable=True, latency_s=0.01, readyz_ok=True, nodes_ready=1, nodes_total=3)
    assert observe(some, [], POLICY).state is HealthState.DEGRADED
    slow = ApiProbe(reachable=True, latency_s=2.5, readyz_ok=False, nodes_ready=3, nodes_total=3)
    health = observe(slow, [], POLICY)
    assert health.state is HealthState.DEGRADED and health.score == 0.4
    assert health.reasons == ("apiserver /readyz is failing", "API slower than 1s")
    slower = observe(replace(slow, latency_s=2.7), [], POLICY)
    assert slower == health  # the same judgement is the same health: no catalog change


def test_one_bad_observation_does_not_take_a_cluster_down() -> None:
    trackers = run([(0, GOOD), (1, BAD), (2, GOOD), (3, BAD), (4, GOOD)])
    assert states(trackers) == ["healthy"] * 5
    assert trackers[1].health.reasons[-1].startswith("1 of 2 bad observations before down")


def test_down_after_n_bad_then_back_after_m_good_and_the_dwell_time() -> None:
    trackers = run([(0, GOOD), (1, BAD), (2, BAD), (3, GOOD), (4, GOOD), (6, GOOD), (8, GOOD)])
    assert states(trackers) == ["healthy", "healthy", "down", "down", "down", "down", "healthy"]
    assert trackers[3].health.reasons[0] == "recovering: 1 of 2 good observations"
    # two good observations by t=4, but down since t=2: the 5 s dwell holds it until t=7
    assert trackers[4].health.reasons[0] == "recovering: down for at least 5s"
    assert trackers[6].since == 8


def test_a_flapping_cluster_is_held_down() -> None:
    flaps: list[tuple[float, Health]] = []
    t = 0.0
    for _ in range(3):  # down and back three times within a minute
        flaps += [(t, GOOD), (t + 1, BAD), (t + 2, BAD), (t + 8, GOOD), (t + 9, GOOD)]
        t += 15
    trackers = run(flaps)
    last = trackers[-1]
    assert last.health.state is HealthState.DOWN
    assert last.held_until == 30 + 2 + 120
    assert (
        "held down for" in last.health.reasons[0]
        and "went down 3 times within 60s" in last.health.reasons[0]
    )
    later = run([(160, GOOD), (161, GOOD)], last)
    assert states(later) == ["healthy", "healthy"]  # the hold is over


def test_serving_states_change_at_once() -> None:
    degraded = observe(OK, [Signal("targets_up", 0.5)], POLICY)
    assert states(run([(0, GOOD), (1, degraded), (2, GOOD)])) == ["healthy", "degraded", "healthy"]


def test_stale_report_is_down() -> None:
    fresh = report("a", observed_at=100.0)
    assert effective_health(fresh, 120.0, 30.0).state is HealthState.HEALTHY
    stale = effective_health(fresh, 140.0, 30.0)
    assert stale.state is HealthState.DOWN and "stale" in stale.reasons[0]
