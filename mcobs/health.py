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
class Hysteresis:
    """How observations become a stable state (see `track`)."""

    down_after: int = 2
    """Bad observations in a row before a scope goes down."""
    up_after: int = 2
    """Good observations in a row before a down scope comes back."""
    min_down_seconds: float = 5.0
    """A scope that went down stays down at least this long (going down is never delayed)."""
    flap_limit: int = 4
    """Going down this many times within `flap_window` seconds..."""
    flap_window: float = 300.0
    hold_down: float = 300.0
    """...holds the scope down this long."""


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    stale_after: float = 30.0
    slow_api_seconds: float = 1.0
    signals: Mapping[str, SignalBounds] = field(default_factory=lambda: MappingProxyType({}))
    hysteresis: Hysteresis = Hysteresis()


@dataclass(frozen=True, slots=True)
class Tracker:
    """A scope's stable health and the history that steadies it."""

    health: Health
    since: float
    """When the stable state last went down or came back."""
    bad: int = 0
    good: int = 0
    downs: tuple[float, ...] = ()
    """When it went down, within the flap window."""
    held_until: float | None = None


def _outside(value: float, low: float | None, high: float | None) -> str | None:
    if low is not None and value < low:
        return f"< {low:g}"
    if high is not None and value > high:
        return f"> {high:g}"
    return None


def judge_signals(
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


def combine(down: list[str], degraded: list[str], info: list[str], score: float = 1.0) -> Health:
    """A health from reasons: any down reason is down, any degraded one degrades."""
    if down:
        return Health(0.0, HealthState.DOWN, tuple(down + degraded + info))
    state = HealthState.DEGRADED if degraded else HealthState.HEALTHY
    return Health(round(score * DEGRADED_FACTOR ** len(degraded), 4), state, tuple(degraded + info))


def observe(probe: ApiProbe, signals: Iterable[Signal], policy: HealthPolicy) -> Health:
    """A cluster's health from one sweep's observations alone (no history)."""
    if not probe.reachable:
        return Health(0.0, HealthState.DOWN, (f"API unreachable: {probe.error or 'no answer'}",))
    score = 1.0
    down: list[str] = []
    degraded: list[str] = []
    info: list[str] = []
    if probe.readyz_ok is False:
        degraded.append("apiserver /readyz is failing")
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
        # No measured figure here: a reason that changed every sweep would make every
        # sweep of a slow cluster a catalog change (the latency is in the probe).
        info.append(f"API slower than {policy.slow_api_seconds:g}s")
        score *= SLOW_API_FACTOR
    signal_down, signal_degraded, signal_info = judge_signals(signals, policy.signals)
    return combine(down + signal_down, degraded + signal_degraded, info + signal_info, score)


def _with_reason(health: Health, reason: str) -> Health:
    return Health(health.score, health.state, (*health.reasons, reason))


def _go_down(tracker: Tracker, raw: Health, now: float, h: Hysteresis) -> Tracker:
    downs = (*(t for t in tracker.downs if now - t < h.flap_window), now)
    held = now + h.hold_down if len(downs) >= h.flap_limit else tracker.held_until
    return Tracker(raw, since=now, bad=tracker.bad + 1, downs=downs, held_until=held)


def track(tracker: Tracker | None, raw: Health, now: float, h: Hysteresis) -> Tracker:
    """The stable health after one more observation.

    Going down takes `down_after` bad observations in a row; coming back takes
    `up_after` good ones and at least `min_down_seconds` down; a scope that went
    down `flap_limit` times within `flap_window` is held down for `hold_down`.
    Changes within the serving states (healthy <-> degraded) apply at once.
    """
    bad = not raw.state.serves
    if tracker is None:
        return Tracker(raw, since=now, bad=int(bad), good=int(not bad))
    if tracker.health.state.serves:
        if not bad:
            return Tracker(
                raw, tracker.since, 0, tracker.good + 1, tracker.downs, tracker.held_until
            )
        count = tracker.bad + 1
        if count >= h.down_after:
            return _go_down(tracker, raw, now, h)
        pending = f"{count} of {h.down_after} bad observations before down: " + "; ".join(
            raw.reasons
        )
        return Tracker(
            _with_reason(tracker.health, pending),
            tracker.since,
            count,
            0,
            tracker.downs,
            tracker.held_until,
        )
    if bad:
        return Tracker(raw, tracker.since, tracker.bad + 1, 0, tracker.downs, tracker.held_until)
    good = tracker.good + 1
    waits = []
    if good < h.up_after:
        waits.append(f"recovering: {good} of {h.up_after} good observations")
    if now - tracker.since < h.min_down_seconds:
        waits.append(f"recovering: down for at least {h.min_down_seconds:g}s")
    if tracker.held_until is not None and now < tracker.held_until:
        waits.append(
            f"held down for {tracker.held_until - now:.0f}s more: went down "
            f"{len(tracker.downs)} times within {h.flap_window:g}s"
        )
    if waits:
        held = Health(0.0, tracker.health.state, (*waits, *tracker.health.reasons))
        return Tracker(held, tracker.since, 0, good, tracker.downs, tracker.held_until)
    return Tracker(raw, since=now, bad=0, good=good, downs=tracker.downs)


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
