"""Untrusted input that breaks mcobs today: each test names one bug.

Found while fuzzing and probing for the OpenAPI/security work (issue 7). They
fail until the product code is fixed. For API calls the expected answer is
what the OpenAPI document promises: a 4xx JSON error naming the problem, and
nothing changed. Most come from `str.isdigit()` (true for "²", which `int()`
and `float()` refuse) and from `$`-anchored patterns used with `re.match`
(which accept a trailing newline).
"""

from __future__ import annotations

import asyncio

import pytest

from mcobs.notify.retry import parse_retry_after
from mcobs.sim.cluster import ServiceSpec
from mcobs.sim.fleet import SimFleet
from tests.security.support import Api, eventually

NESTED = "[" * 20_000 + "]" * 20_000  # 40 KB: under the body limit, deeper than json can go


def client_error(status: int, body: object) -> bool:
    return 400 <= status < 500 and isinstance(body, dict) and "error" in body


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/webhooks/dead-letters"])
async def test_bug_a_unicode_digit_as_limit_is_a_500(api: Api, path: str) -> None:
    """`str.isdigit()` is true for "²", then `int("²")` raises ValueError
    (mcobs/decide/query.py parse_event_query, mcobs/notify/api.py _page_param)."""
    status, body, _ = await api.call("GET", path, params={"limit": "²"})
    assert client_error(status, body), (status, body)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"])
async def test_bug_an_event_time_beyond_the_datetime_range_is_a_500(api: Api, moment: str) -> None:
    """`parse_time` (mcobs/notify/event.py) converts to UTC, which overflows
    (OverflowError) for the first and last moments of the datetime range."""
    status, body, _ = await api.call("GET", "/api/v1/events", params={"since": moment})
    assert client_error(status, body), (status, body)


@pytest.mark.parametrize("path", ["/api/v1/drains", "/api/v1/alerts"])
async def test_bug_a_deeply_nested_json_body_is_a_500(api: Api, path: str) -> None:
    """`_json_body` (mcobs/api/control.py) catches JSONDecodeError but not the
    RecursionError `json.loads` raises for deep nesting."""
    status, body, _ = await api.call(
        "POST", path, data=NESTED, headers={"Content-Type": "application/json"}
    )
    assert client_error(status, body), (status, body)


@pytest.mark.parametrize(
    ("path", "data", "content_type"),
    [
        ("/api/v1/drains", b'{"cluster": "eu-west", "reason": "x"}', "application/json"),
        ("/api/v1/alerts", b'{"version": "4", "alerts": []}', "application/json"),
        ("/api/v1/query", b"query=up", "application/x-www-form-urlencoded"),
    ],
    ids=["drains", "alerts", "query"],
)
async def test_bug_an_unknown_charset_is_a_500(
    api: Api, path: str, data: bytes, content_type: str
) -> None:
    """aiohttp's `request.json()`/`request.post()` raise LookupError for an unknown
    charset in Content-Type; nothing turns it into a 400/415."""
    status, body, _ = await api.call(
        "POST", path, data=data, headers={"Content-Type": f"{content_type}; charset=nope"}
    )
    assert 400 <= status < 500, (status, body)


async def test_bug_a_cluster_name_with_a_trailing_newline_is_accepted_for_a_drain(
    api: Api,
) -> None:
    """`_LABEL.match` with a `$`-anchored pattern accepts "eu-west\\n" (Python's `$`
    matches before a final newline): the drain is stored for a cluster that does not
    exist and the answer is 201 (mcobs/api/control.py; the same pattern in
    mcobs/alerts.py and mcobs/decide/query.py). `fullmatch` or `\\Z` fixes it."""
    status, body, _ = await api.call(
        "POST", "/api/v1/drains", json={"cluster": "eu-west\n", "reason": "typo"}
    )
    assert status == 400, (status, body)


async def test_bug_a_cluster_label_with_a_trailing_newline_fires_an_alert(api: Api) -> None:
    """The same `$` in mcobs/alerts.py: the alert is stored as firing for a scope that
    matches no cluster, where it should be ignored with a reason."""
    labels = {"alertname": "NodeDown", "cluster": "eu-west\n", "severity": "critical"}
    payload = {"version": "4", "alerts": [{"status": "firing", "labels": labels}]}
    status, body, _ = await api.call("POST", "/api/v1/alerts", json=payload)
    assert status == 200
    assert body["firing"] == [], body


# -- input from member clusters and webhook consumers -------------------------------------


async def test_bug_a_unicode_digit_in_a_service_annotation_stops_the_hub(
    fleet: SimFleet, api: Api
) -> None:
    """Anyone who may annotate a Service in one member cluster can stop the hub:
    `mcobs.io/ttl: "²"` makes `parse_options` (mcobs/annotations.py `_whole`) raise
    ValueError, which kills that cluster's collector and then the planner; `Hub.wait`
    returns, so `mcobs serve` exits. Expected: the annotation is reported as a problem
    of that service (as for any other bad value) and everything keeps running."""
    exported = {"mcobs.io/global": "true"}
    bad = ServiceSpec(
        "default", "bad", annotations={**exported, "mcobs.io/ttl": "²"}, addresses=("192.0.2.9",)
    )
    fleet.put_service("eu-west", bad)
    late = ServiceSpec("default", "late", annotations=exported, addresses=("192.0.2.10",))
    fleet.put_service("us-east", late)

    async def both_listed() -> bool:
        services = (await api.get("/api/v1/services"))["services"]
        return {"bad", "late"} <= {s["name"] for s in services}

    await eventually(both_listed, limit=5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(api.hub.wait(), 1.0)  # still running


def test_bug_a_unicode_digit_in_retry_after_raises() -> None:
    """A webhook consumer answering `Retry-After: ²` makes `parse_retry_after`
    (mcobs/notify/retry.py, "None when absent/bad") raise ValueError: the outbox logs
    "delivery pass failed" and the attempt is neither counted nor scheduled by it."""
    assert parse_retry_after("²", 0.0) is None
