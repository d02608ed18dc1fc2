"""One delivery (an event for one consumer) and its JSON form in the outbox (pure)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from mcobs.notify.event import Event, EventError, event_from_json, event_json

VERSION: Final = 1


class DeliveryDecodeError(ValueError):
    """A stored delivery does not decode."""


def delivery_id(event_id: str, consumer: str) -> str:
    """Stable per (event, consumer): enqueueing the same event twice adds nothing."""
    return f"{event_id}:{consumer}"


@dataclass(frozen=True, slots=True)
class Delivery:
    consumer: str
    event: Event
    created_at: float
    """Unix seconds when it was enqueued (or re-queued from the dead letters)."""
    attempts: int = 0
    last_attempt_at: float | None = None
    last_result: str | None = None
    """Why the last attempt failed (`HTTP 503`, `timed out after 10s`)."""
    last_status: int | None = None
    dead_at: float | None = None
    dead_reason: str | None = None

    @property
    def id(self) -> str:
        return delivery_id(self.event.id, self.consumer)

    def attempted(self, now: float, result: str, status: int | None) -> Delivery:
        return replace(
            self,
            attempts=self.attempts + 1,
            last_attempt_at=now,
            last_result=result,
            last_status=status,
        )

    def buried(self, now: float, reason: str) -> Delivery:
        return replace(self, dead_at=now, dead_reason=reason)

    def revived(self, now: float) -> Delivery:
        """Back from the dead letters: a fresh retry budget, the history kept."""
        return replace(self, created_at=now, attempts=0, dead_at=None, dead_reason=None)


def encode_delivery(delivery: Delivery) -> bytes:
    raw: dict[str, Any] = {
        "v": VERSION,
        "consumer": delivery.consumer,
        "event": event_json(delivery.event),
        "created_at": delivery.created_at,
        "attempts": delivery.attempts,
        "last_attempt_at": delivery.last_attempt_at,
        "last_result": delivery.last_result,
        "last_status": delivery.last_status,
        "dead_at": delivery.dead_at,
        "dead_reason": delivery.dead_reason,
    }
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode()


def _number(raw: Mapping[str, Any], key: str, optional: bool = False) -> float | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeliveryDecodeError(f"{key}: must be a number, got {value!r}")
    return float(value)


def _string(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise DeliveryDecodeError(f"{key}: must be a string, got {value!r}")
    return value


def decode_delivery(payload: bytes | str) -> Delivery:
    """Raises DeliveryDecodeError with the reason."""
    try:
        raw = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise DeliveryDecodeError(f"not JSON: {error}") from None
    if not isinstance(raw, dict) or raw.get("v") != VERSION:
        raise DeliveryDecodeError(f"not a version {VERSION} delivery")
    consumer = raw.get("consumer")
    if not isinstance(consumer, str) or not consumer:
        raise DeliveryDecodeError(f"consumer: must be a name, got {consumer!r}")
    try:
        event = event_from_json(raw.get("event"))
    except EventError as error:
        raise DeliveryDecodeError(f"event: {error}") from None
    attempts = raw.get("attempts")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise DeliveryDecodeError(f"attempts: must be a count, got {attempts!r}")
    status = raw.get("last_status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise DeliveryDecodeError(f"last_status: must be an integer, got {status!r}")
    created_at = _number(raw, "created_at")
    assert created_at is not None
    return Delivery(
        consumer=consumer,
        event=event,
        created_at=created_at,
        attempts=attempts,
        last_attempt_at=_number(raw, "last_attempt_at", optional=True),
        last_result=_string(raw, "last_result"),
        last_status=status,
        dead_at=_number(raw, "dead_at", optional=True),
        dead_reason=_string(raw, "dead_reason"),
    )
