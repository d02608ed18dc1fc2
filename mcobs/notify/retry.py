"""What an attempt's result means, and when to try again (pure; time and randomness passed in).

2xx is delivered. 410 Gone and a refused target (SSRF guard) give up at once.
Anything else — other statuses, redirects (never followed), timeouts,
connection errors — is retried after an exponential backoff with full jitter,
`uniform(0, min(cap, base * 2**(attempt-1)))`, but never sooner than the
consumer's `Retry-After` (seconds or an HTTP-date). A delivery whose next
attempt would fall after `created + max_age`, or that has made `max_attempts`
attempts, gives up: it goes to the dead letters.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

DEFAULT_MAX_AGE: Final = 24 * 3600.0
DEFAULT_BACKOFF_BASE: Final = 2.0
DEFAULT_BACKOFF_CAP: Final = 300.0


class AttemptKind(StrEnum):
    DELIVERED = "delivered"
    STATUS = "status"
    """A non-2xx status other than 410 and redirects."""
    REDIRECT = "redirect"
    GONE = "gone"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    REFUSED = "refused"
    """The target is denied before connecting (a private address with deny_private)."""


PERMANENT: Final = frozenset({AttemptKind.GONE, AttemptKind.REFUSED})


@dataclass(frozen=True, slots=True)
class AttemptResult:
    kind: AttemptKind
    detail: str
    """Why, for people: `HTTP 503`, `timed out after 10s`, ... (never a URL or a secret)."""
    status: int | None = None
    retry_after: float | None = None
    """Seconds the consumer asked us to wait (already relative to the attempt's time)."""

    @property
    def ok(self) -> bool:
        return self.kind is AttemptKind.DELIVERED


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP-date; None when absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


def result_for_status(status: int, retry_after: str | None, now: float) -> AttemptResult:
    """Classify an HTTP response status (redirects are never followed)."""
    if 200 <= status < 300:
        return AttemptResult(AttemptKind.DELIVERED, f"HTTP {status}", status)
    wait = parse_retry_after(retry_after, now)
    if 300 <= status < 400:
        return AttemptResult(
            AttemptKind.REDIRECT, f"HTTP {status} redirect (not followed)", status, wait
        )
    if status == 410:
        return AttemptResult(AttemptKind.GONE, "HTTP 410 Gone: the consumer asked to stop", 410)
    return AttemptResult(AttemptKind.STATUS, f"HTTP {status}", status, wait)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int | None = None
    """Give up after this many attempts (None: only `max_age` limits)."""
    max_age: float = DEFAULT_MAX_AGE
    """Give up when the next attempt would be later than this many seconds after enqueueing."""
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_cap: float = DEFAULT_BACKOFF_CAP

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not (self.max_age > 0 and self.backoff_base > 0 and self.backoff_cap > 0):
            raise ValueError("max_age, backoff_base and backoff_cap must be positive")

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Full jitter after the `attempts`-th failed attempt."""
        exponent = min(attempts - 1, 62)
        ceiling = min(self.backoff_cap, self.backoff_base * math.pow(2, exponent))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class Retry:
    at: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


def after_failure(
    policy: RetryPolicy,
    result: AttemptResult,
    *,
    attempts: int,
    created_at: float,
    now: float,
    rng: random.Random,
) -> Retry | GiveUp:
    """When to try again after the `attempts`-th attempt failed with `result`, or why not."""
    if result.kind in PERMANENT:
        return GiveUp(result.detail)
    if policy.max_attempts is not None and attempts >= policy.max_attempts:
        return GiveUp(f"{attempts} attempts failed, the last: {result.detail}")
    delay = policy.backoff(attempts, rng)
    if result.retry_after is not None:
        delay = max(delay, result.retry_after)
    deadline = created_at + policy.max_age
    if now + delay > deadline:
        return GiveUp(
            f"retry budget of {_duration(policy.max_age)} spent after {attempts} attempts, "
            f"the last: {result.detail}"
        )
    return Retry(now + delay)


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
