"""Cluster health from observations (pure; the clock is passed in).

A sweep's observations (API probe, Prometheus signals) become a score from 0 to
1 and a state, each with the reasons behind it. A failed API probe moves a
cluster down only after `down_after_failures` failures in a row, so one lost
packet does not fail a region over.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mcobs.model import AlertMark, ApiProbe, ClusterReport, Drain, Health, HealthState, Signal

DEGRADED_FACTOR = 0.5
SLOW_API_FACTOR = 0.8


@dataclass(frozen=True, slots=True)
class SignalBounds:
    healthy_min: float | None = None
    healthy_max: float | None = None
    down_min: float | None = None
    down_max: float | None = None


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    down_after_failures: int = 2
    stale_after: float = 30.0
    slow_api_seconds: float = 1.0
    signals: Mapping[str, SignalBounds] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Assessment:
    health: Health
    failures: int
    """Consecutive failed API probes, carried into the next assessment."""


def _outside(value: float, low: float | None, high: float | None) -> str | None:
    if low is not None and value < low:
        return f"< {low:g}"
    if high is not None and value > high:
        return f"> {high:g}"
    return None


def _judge_signals(
    signals: Iterable[Signal], bounds: Mapping[str, SignalBounds]
) -> tuple[list[str], list[str], list[str]]:
    """Reasons for (down, degraded, informational) from the signals."""
    down: list[str] = []
    degraded: list[str] = []
    info: list[str] = []
    for signal in signals:
        if signal.value is None:
            info.append(f"signal {signal.name} unavailable: {signal.error or 'no data'}")
            continue
        rule = bounds.get(signal.name, SignalBounds())
        breach = _outside(signal.value, rule.down_min, rule.down_max)
        if breach:
            down.append(f"signal {signal.name} = {signal.value:g} {breach}")
            continue
        breach = _outside(signal.value, rule.healthy_min, rule.healthy_max)
        if breach:
            degraded.append(f"signal {signal.name} = {signal.value:g} {breach}")
    return down, degraded, info


def assess(
    probe: ApiProbe,
    signals: Iterable[Signal],
    previous: Assessment | None,
    policy: HealthPolicy,
) -> Assessment:
    """The health of a cluster after one sweep, given the previous assessment."""
    if not probe.reachable:
        failures = (previous.failures if previous else 0) + 1
        error = probe.error or "no answer"
        if failures >= policy.down_after_failures:
            reason = f"API unreachable ({failures} failed probes): {error}"
            return Assessment(Health(0.0, HealthState.DOWN, (reason,)), failures)
        held = previous.health if previous else Health(0.0, HealthState.UNKNOWN)
        reason = (
            f"API probe failed ({failures} of {policy.down_after_failures} before down): {error}"
        )
        return Assessment(Health(held.score, held.state, (*held.reasons, reason)), failures)

    score = 1.0
    down: list[str] = []
    degraded: list[str] = []
    info: list[str] = []
    if probe.readyz_ok is False:
        degraded.append("apiserver /readyz is failing")
        score *= DEGRADED_FACTOR
    if probe.nodes_total:
        share = probe.nodes_ready / probe.nodes_total
        if probe.nodes_ready == 0:
            down.append(f"no Ready nodes (0 of {probe.nodes_total})")
        elif share < 1:
            (degraded if share < 0.5 else info).append(
                f"{probe.nodes_ready} of {probe.nodes_total} nodes Ready"
            )
            score *= share
    if probe.latency_s is not None and probe.latency_s > policy.slow_api_seconds:
        degraded.append(f"API latency {probe.latency_s:.2f}s > {policy.slow_api_seconds:g}s")
        score *= SLOW_API_FACTOR
    signal_down, signal_degraded, signal_info = _judge_signals(signals, policy.signals)
    down += signal_down
    degraded += signal_degraded
    info += signal_info
    score *= DEGRADED_FACTOR ** len(signal_degraded)

    if down:
        return Assessment(Health(0.0, HealthState.DOWN, tuple(down + degraded + info)), 0)
    state = HealthState.DEGRADED if degraded else HealthState.HEALTHY
    return Assessment(Health(round(score, 4), state, tuple(degraded + info)), 0)


def effective_health(report: ClusterReport, now: float, stale_after: float) -> Health:
    """A report's health, or down when the cluster stopped reporting."""
    age = now - report.observed_at
    if age > stale_after:
        return Health(0.0, HealthState.DOWN, (f"no report for {age:.0f}s (stale)",))
    return report.health


def _when(at: float | None) -> str:
    if at is None:
        return ""
    return " until " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def with_overrides(
    health: Health,
    drains: Iterable[Drain],
    alerts: Iterable[AlertMark],
    now: float,
) -> Health:
    """Health after people's drains and Alertmanager's firing alerts for one scope.

    A drain wins over everything; a critical alert takes the scope down, any
    other alert degrades it. Expired drains and alerts count for nothing.
    """
    for drain in drains:
        if drain.active(now):
            who = f" by {drain.by}" if drain.by else ""
            reason = f"drained{who}: {drain.reason}{_when(drain.expires_at)}"
            return Health(0.0, HealthState.DRAINED, (reason,))
    firing = [a for a in alerts if a.active(now)]
    if not firing:
        return health
    reasons = tuple(
        f"alert {a.name} ({a.severity}) firing{': ' + a.summary if a.summary else ''}"
        for a in firing
    )
    if any(a.down for a in firing):
        return Health(0.0, HealthState.DOWN, (*reasons, *health.reasons))
    if not health.state.serves:
        return Health(health.score, health.state, (*health.reasons, *reasons))
    return Health(
        round(health.score * DEGRADED_FACTOR, 4), HealthState.DEGRADED, (*reasons, *health.reasons)
    )
