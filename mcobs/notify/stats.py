"""Delivery counters of this process, for the API and (optionally) Prometheus.

Each attempt ends in exactly one result:

    delivered      the consumer answered 2xx
    retried        it failed; another attempt is scheduled
    failed         it failed for good at once (410 Gone, target refused): dead-lettered
    dead_lettered  it failed and the retry budget is spent: dead-lettered

Labels are consumer names and fixed words only: never a URL or a secret.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram

from mcobs.notify.retry import AttemptKind

RESULTS: Final = ("delivered", "retried", "failed", "dead_lettered")


class DeliveryStats:
    """In-memory counters; mirrored into `registry` when one is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._results: Counter[tuple[str, str]] = Counter()
        self._failures: Counter[tuple[str, str]] = Counter()
        self._events: Counter[str] = Counter()
        self._prom: _Prometheus | None = _Prometheus(registry) if registry is not None else None

    def declare(self, consumers: Sequence[str]) -> None:
        """Start every consumer's series at zero, so dashboards see them before traffic."""
        if self._prom is not None:
            for consumer in consumers:
                for result in RESULTS:
                    self._prom.deliveries.labels(consumer, result)
                self._prom.pending.labels(consumer).set(0)

    def event(self, event_type: str) -> None:
        self._events[event_type] += 1
        if self._prom is not None:
            self._prom.events.labels(event_type).inc()

    def attempt(
        self, consumer: str, result: str, failure: AttemptKind | None, seconds: float
    ) -> None:
        assert result in RESULTS, result
        self._results[consumer, result] += 1
        if failure is not None:
            self._failures[consumer, failure.value] += 1
        if self._prom is not None:
            self._prom.deliveries.labels(consumer, result).inc()
            if failure is not None:
                self._prom.failures.labels(consumer, failure.value).inc()
            self._prom.duration.labels(consumer).observe(max(0.0, seconds))

    def counters(self, consumer: str) -> Mapping[str, int]:
        """Attempts by result: `delivered`, `retried`, `failed`, `dead_lettered`."""
        return {r: self._results[consumer, r] for r in RESULTS}

    def failures(self, consumer: str) -> Mapping[str, int]:
        """Failed attempts by kind (`status`, `timeout`, `refused`, ...)."""
        return {
            kind: count
            for (name, kind), count in sorted(self._failures.items())
            if name == consumer
        }

    def events(self) -> Mapping[str, int]:
        return dict(self._events)

    def set_pending(self, pending: Mapping[str, int]) -> None:
        if self._prom is not None:
            for consumer, count in pending.items():
                self._prom.pending.labels(consumer).set(count)

    def set_dead_letters(self, count: int) -> None:
        if self._prom is not None:
            self._prom.dead.set(count)

    def set_buffered(self, count: int) -> None:
        if self._prom is not None:
            self._prom.buffered.set(count)


class _Prometheus:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = PromCounter(
            "mcobs_webhook_deliveries",
            "Webhook delivery attempts by consumer and result "
            "(delivered, retried, failed, dead_lettered).",
            ["consumer", "result"],
            registry=registry,
        )
        self.failures = PromCounter(
            "mcobs_webhook_attempt_failures",
            "Failed webhook attempts by consumer and kind "
            "(status, redirect, gone, timeout, connection, refused).",
            ["consumer", "kind"],
            registry=registry,
        )
        self.duration = PromHistogram(
            "mcobs_webhook_attempt_duration_seconds",
            "Time of one webhook attempt, by consumer.",
            ["consumer"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.events = PromCounter(
            "mcobs_webhook_events",
            "Events put in the webhook outbox, by type.",
            ["type"],
            registry=registry,
        )
        self.pending = PromGauge(
            "mcobs_webhook_pending_deliveries",
            "Deliveries waiting in the outbox, by consumer (as last seen by this replica).",
            ["consumer"],
            registry=registry,
        )
        self.dead = PromGauge(
            "mcobs_webhook_dead_letters",
            "Deliveries in the dead-letter list (as last seen by this replica).",
            registry=registry,
        )
        self.buffered = PromGauge(
            "mcobs_webhook_buffered_events",
            "Events held in this process because the outbox store is unreachable.",
            registry=registry,
        )
