"""Schemathesis against a real hub: no server errors, every response as documented.

Every operation of the document (the one `GET /api/v1/openapi.json` serves) is
fuzzed with the bearer token, except the two live streams (never-ending
responses; `test_openapi.py` reads their first frames). The schema is loaded at
import time: schemathesis' lazy `from_fixture` does not work with pytest 9.

The Prometheus-compatible routes answer 503 (or pass on a cluster's 5xx) by
design when the clusters' Prometheus fail them, in Prometheus' error envelope;
there a 5xx is accepted only in that envelope, never as mcobs' own
`{"error": "internal error"}`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mcobs.api.openapi import openapi_document
from tests.security.livehub import TOKEN, LiveHub

MAX_EXAMPLES = 50
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
UPSTREAM_ERRORS = frozenset({"unavailable", "timeout", "internal", "execution"})

STREAMS = ["/api/v1/events/stream", "/api/v1/status/stream"]

schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path=STREAMS)


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    with LiveHub(Path(tmp_path_factory.mktemp("schemathesis"))) as hub:
        yield hub


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def tally() -> Iterator[Counter[tuple[str, int]]]:
    """Requests per (operation, status); printed at the end (`pytest -s` shows it)."""
    counts: Counter[tuple[str, int]] = Counter()
    yield counts
    total = sum(counts.values())
    print(f"\nschemathesis: {total} requests, {len({op for op, _ in counts})} operations")
    for (operation, status), count in sorted(counts.items()):
        print(f"  {operation:55} {status}  x{count}")


def _prometheus_upstream_failure(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and body.get("status") == "error"
        and body.get("errorType") in UPSTREAM_ERRORS
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is a regression, not luck
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_as_documented(
    case: schemathesis.Case[Any],
    live_hub: LiveHub,
    http: requests.Session,
    tally: Counter[tuple[str, int]],
) -> None:
    # Sent with our own `requests` call: schemathesis' `case.call` trips over the
    # urllib3-future package that `niquests` (via grafana-client) installs as `urllib3`.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    kwargs = case.as_transport_kwargs(base_url=live_hub.base_url, headers=headers)
    response = http.request(**kwargs, timeout=10, allow_redirects=False)
    tally[case.operation.label, response.status_code] += 1
    prometheus = "prometheus" in (case.operation.definition.raw.get("tags") or [])
    checks = CONFORMANCE if prometheus else [not_a_server_error, *CONFORMANCE]
    case.validate_response(response, checks=checks, headers=headers, transport_kwargs=kwargs)
    if prometheus and response.status_code >= 500:
        assert _prometheus_upstream_failure(response), json.dumps(response.text)
