from mcobs.health import HealthPolicy, SignalBounds, assess, effective_health
from mcobs.model import ApiProbe, HealthState, Signal

from .factories import report

POLICY = HealthPolicy(
    down_after_failures=2,
    slow_api_seconds=1.0,
    signals={"targets_up": SignalBounds(healthy_min=0.9, down_min=0.2)},
)
OK = ApiProbe(reachable=True, latency_s=0.02, readyz_ok=True, nodes_ready=3, nodes_total=3)
LOST = ApiProbe(reachable=False, error="cannot connect: Connection refused")


def test_healthy_cluster_scores_one() -> None:
    result = assess(OK, [Signal("targets_up", 1.0)], None, POLICY)
    assert result.health.state is HealthState.HEALTHY and result.health.score == 1.0


def test_unreachable_goes_down_only_after_configured_failures() -> None:
    first = assess(OK, [], None, POLICY)
    once = assess(LOST, [], first, POLICY)
    assert once.health.state is HealthState.HEALTHY
    assert "1 of 2 before down" in once.health.reasons[-1]
    twice = assess(LOST, [], once, POLICY)
    assert twice.health.state is HealthState.DOWN and twice.health.score == 0
    assert "Connection refused" in twice.health.reasons[0]
    back = assess(OK, [], twice, POLICY)
    assert back.health.state is HealthState.HEALTHY and back.failures == 0


def test_signal_thresholds_degrade_then_down() -> None:
    degraded = assess(OK, [Signal("targets_up", 0.5)], None, POLICY).health
    assert degraded.state is HealthState.DEGRADED and degraded.score == 0.5
    assert degraded.reasons == ("signal targets_up = 0.5 < 0.9",)
    down = assess(OK, [Signal("targets_up", 0.1)], None, POLICY).health
    assert down.state is HealthState.DOWN


def test_missing_signal_is_reported_but_changes_nothing() -> None:
    health = assess(OK, [Signal("targets_up", None, "timed out")], None, POLICY).health
    assert health.state is HealthState.HEALTHY
    assert health.reasons == ("signal targets_up unavailable: timed out",)


def test_nodes_and_readyz_and_latency() -> None:
    no_nodes = ApiProbe(
        reachable=True, latency_s=0.01, readyz_ok=True, nodes_ready=0, nodes_total=3
    )
    assert assess(no_nodes, [], None, POLICY).health.state is HealthState.DOWN
    some = ApiProbe(reachable=True, latency_s=0.01, readyz_ok=True, nodes_ready=1, nodes_total=3)
    assert assess(some, [], None, POLICY).health.state is HealthState.DEGRADED
    slow = ApiProbe(reachable=True, latency_s=2.5, readyz_ok=False, nodes_ready=3, nodes_total=3)
    health = assess(slow, [], None, POLICY).health
    assert health.state is HealthState.DEGRADED and health.score == 0.4
    assert len(health.reasons) == 2


def test_stale_report_is_down() -> None:
    fresh = report("a", observed_at=100.0)
    assert effective_health(fresh, 120.0, 30.0).state is HealthState.HEALTHY
    stale = effective_health(fresh, 140.0, 30.0)
    assert stale.state is HealthState.DOWN and "stale" in stale.reasons[0]
