from __future__ import annotations

import random

import pytest

from mcobs.notify.retry import (
    AttemptKind,
    AttemptResult,
    GiveUp,
    Retry,
    RetryPolicy,
    after_failure,
    parse_retry_after,
    result_for_status,
)

NOW = 1_714_564_800.0  # Wed, 01 May 2024 12:00:00 GMT
FAILED = AttemptResult(AttemptKind.STATUS, "HTTP 503", 503)


def test_statuses_are_classified() -> None:
    assert result_for_status(204, None, NOW).ok
    assert result_for_status(302, None, NOW).kind is AttemptKind.REDIRECT
    assert result_for_status(302, None, NOW).detail == "HTTP 302 redirect (not followed)"
    assert result_for_status(410, None, NOW).kind is AttemptKind.GONE
    assert result_for_status(500, None, NOW).kind is AttemptKind.STATUS
    assert result_for_status(429, "7", NOW).retry_after == 7.0


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Wed, 01 May 2024 12:02:30 GMT", NOW) == 150.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(backoff_base=2.0, backoff_cap=300.0)
    rng = random.Random(1)
    for attempts, ceiling in ((1, 2.0), (2, 4.0), (5, 32.0), (9, 300.0), (500, 300.0)):
        delays = [policy.backoff(attempts, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range


def test_retry_after_is_a_floor_for_the_next_attempt() -> None:
    slow_down = AttemptResult(AttemptKind.STATUS, "HTTP 429", 429, retry_after=90.0)
    step = after_failure(
        RetryPolicy(), slow_down, attempts=1, created_at=NOW, now=NOW, rng=random.Random(2)
    )
    assert step == Retry(NOW + 90.0)


def test_gone_and_refused_give_up_at_once() -> None:
    for kind in (AttemptKind.GONE, AttemptKind.REFUSED):
        result = AttemptResult(kind, "why")
        step = after_failure(RetryPolicy(), result, attempts=1, created_at=NOW, now=NOW,
                             rng=random.Random())  # fmt: skip
        assert step == GiveUp("why")


def test_max_attempts_limits_retries() -> None:
    policy = RetryPolicy(max_attempts=3)
    rng = random.Random(3)
    assert isinstance(
        after_failure(policy, FAILED, attempts=2, created_at=NOW, now=NOW, rng=rng), Retry
    )
    step = after_failure(policy, FAILED, attempts=3, created_at=NOW, now=NOW, rng=rng)
    assert step == GiveUp("3 attempts failed, the last: HTTP 503")


def test_max_age_limits_retries() -> None:
    policy = RetryPolicy(max_age=3600.0, backoff_base=300.0, backoff_cap=300.0)
    rng = random.Random(4)
    assert isinstance(
        after_failure(policy, FAILED, attempts=3, created_at=NOW, now=NOW + 3000, rng=rng), Retry
    )
    step = after_failure(policy, FAILED, attempts=12, created_at=NOW, now=NOW + 3599.9, rng=rng)
    assert step == GiveUp("retry budget of 1h spent after 12 attempts, the last: HTTP 503")


def test_policies_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_age=0)
