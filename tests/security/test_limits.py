"""Request size limits and CORS, against a running hub.

Bodies over 64 KiB are refused with 413 before they are parsed, whether they
announce their length or come chunked, and change nothing. No response ever
carries a CORS header: browsers on other origins can neither read the API nor
pass a preflight for a mutating call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDictProxy

from mcobs.api.app import MAX_BODY_BYTES
from mcobs.api.openapi import openapi_document
from tests.security.support import Api, eventually

PADDING = MAX_BODY_BYTES + 1024


def padded(document: dict[str, object]) -> bytes:
    """Valid JSON for `document`, made larger than the limit with whitespace only."""
    text = json.dumps(document)
    return (text[:-1] + " " * PADDING + "}").encode()


def drain(cluster: str) -> dict[str, object]:
    return {"cluster": cluster, "reason": "maintenance", "by": "security-suite"}


def alert(cluster: str, name: str) -> dict[str, object]:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "cluster": cluster, "severity": "critical"},
                "annotations": {"summary": "disk full"},
            }
        ],
    }


async def drained(api: Api) -> set[str]:
    return {d["scope"] for d in (await api.get("/api/v1/drains"))["drains"]}


async def alerting(api: Api) -> set[str]:
    return {a["name"] for a in (await api.get("/api/v1/alerts"))["alerts"]}


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_drain_over_64_kib_is_refused_and_drains_nothing(api: Api, chunked: bool) -> None:
    body = padded(drain("eu-west"))
    assert json.loads(body) == drain("eu-west")  # valid but for its size
    data = chunks(body) if chunked else body
    status, reply, response = await api.call(
        "POST", "/api/v1/drains", data=data, headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert response.content_type == "application/json"
    assert reply == {"error": "Request Entity Too Large"}

    # A small drain still works, and once it shows, the big one has not.
    assert (await api.call("POST", "/api/v1/drains", json=drain("us-east")))[0] == 201

    async def small_one_shows() -> bool:
        return "us-east" in await drained(api)

    await eventually(small_one_shows)
    assert await drained(api) == {"us-east"}
    state = {
        c["name"]: c["health"]["state"] for c in (await api.get("/api/v1/clusters"))["clusters"]
    }
    assert state["eu-west"] != "drained"


async def test_an_alert_payload_over_64_kib_is_refused_and_fires_nothing(api: Api) -> None:
    status, reply, _ = await api.call(
        "POST",
        "/api/v1/alerts",
        data=padded(alert("eu-west", "TooBig")),
        headers={"Content-Type": "application/json"},
    )
    assert (status, reply) == (413, {"error": "Request Entity Too Large"})
    assert (await api.call("POST", "/api/v1/alerts", json=alert("us-east", "Small")))[0] == 200

    async def small_one_shows() -> bool:
        return "Small" in await alerting(api)

    await eventually(small_one_shows)
    assert await alerting(api) == {"Small"}


async def test_a_large_prometheus_form_is_refused(api: Api) -> None:
    form = b"query=up&padding=" + b"x" * PADDING
    status, _, _ = await api.call(
        "POST",
        "/api/v1/query",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 413


async def test_a_body_just_under_the_limit_is_read(api: Api) -> None:
    body = json.dumps(drain("eu-west")).encode()
    body = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
    assert len(body) == MAX_BODY_BYTES
    status, _, _ = await api.call(
        "POST", "/api/v1/drains", data=body, headers={"Content-Type": "application/json"}
    )
    assert status == 201


# -- CORS ---------------------------------------------------------------------------------

ORIGIN = "https://evil.example"


def every_path() -> list[str]:
    """Every documented path with sample values for its parameters."""
    values = {
        "{namespace}": "default",
        "{name}": "web",
        "{cluster}": "eu-west",
        "{id}": "evt_x:pager",
    }
    paths = []
    for path in openapi_document()["paths"]:
        for placeholder, value in values.items():
            path = path.replace(placeholder, value)
        paths.append(path)
    return paths


def cors_headers(headers: CIMultiDictProxy[str]) -> list[str]:
    return [name for name in headers if name.lower().startswith("access-control-")]


async def test_no_response_carries_a_cors_header(api: Api) -> None:
    seen = 0
    for path in every_path():
        if path.endswith("/stream"):
            continue
        for auth in (True, False):
            _, _, response = await api.call("GET", path, auth=auth, headers={"Origin": ORIGIN})
            assert cors_headers(response.headers) == [], path
            seen += 1
    _, _, response = await api.call(
        "POST", "/api/v1/drains", json=drain("eu-west"), headers={"Origin": ORIGIN}
    )
    assert response.status == 201
    assert cors_headers(response.headers) == []
    assert seen >= 2 * 25


async def test_a_cors_preflight_is_never_granted(api: Api) -> None:
    for path in every_path():
        for method in ("POST", "DELETE", "GET"):
            status, _, response = await api.call(
                "OPTIONS",
                path,
                auth=False,
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert cors_headers(response.headers) == [], (path, method)
            assert status >= 400, (path, method, status)
