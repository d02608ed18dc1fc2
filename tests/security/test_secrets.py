"""Secrets never reach logs, API responses, metrics (or webhook payloads).

One full run of a hub with every kind of secret configured: the API bearer
token, two webhook signing secrets (one inline, one from a file) and webhook
URLs holding a token, and the kubeconfig tokens of three simulated clusters.
The run takes a cluster down and back, rotates a cluster's token under the hub
(its API then refuses the one the hub holds), drains and undrains, receives
alerts, delivers webhooks (retried, redirected, dead-lettered, re-queued), and
tries wrong tokens. Then every log record (DEBUG, every logger), every GET
endpoint, `/metrics` in both formats, every response of the run and every
webhook delivery are searched for each secret and its base64 and hex forms.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mcobs.api.openapi import openapi_document
from mcobs.config import Settings, parse_settings
from mcobs.notify.signing import new_secret
from mcobs.sim.control import sim_routes
from mcobs.sim.fleet import SimFleet
from tests.security.livehub import TOKEN
from tests.security.support import Api, eventually, running_hub


def forms(secret: str) -> set[str]:
    """The secret and the encodings it could leak in."""
    raw = secret.encode()
    found = {secret}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        found |= {encoded.decode(), encoded.decode().rstrip("=")}
    found.add(raw.hex())
    if secret.startswith("whsec_"):  # a signing secret: also its key bytes, any encoding
        key = base64.b64decode(secret.removeprefix("whsec_"))
        found |= {
            secret.removeprefix("whsec_"),
            base64.urlsafe_b64encode(key).decode().rstrip("="),
            key.hex(),
        }
    return found


@dataclass
class Receiver:
    """A webhook consumer on loopback: `/hooks/...` answers 503 once, then a redirect, then
    200; `/broken/...` always 500."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    _hooks_seen: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((str(request.rel_url), dict(request.headers), body))
        if request.path.startswith("/broken/"):
            return web.Response(status=500, text="nope")
        self._hooks_seen += 1
        if self._hooks_seen == 1:
            return web.Response(status=503)
        if self._hooks_seen == 2:
            return web.Response(status=302, headers={"Location": request.path_qs})
        return web.Response(status=204)

    def delivered(self, prefix: str) -> int:
        return sum(1 for path, _, _ in self.requests if path.startswith(prefix))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Secrets:
    api_token: str
    url_token: str
    pager_secret: str
    flaky_secret: str
    cluster_tokens: dict[str, str]

    def all(self) -> dict[str, set[str]]:
        named = {
            "API token": self.api_token,
            "webhook URL token": self.url_token,
            "webhook secret (inline)": self.pager_secret,
            "webhook secret (file)": self.flaky_secret,
            **{f"kubeconfig token of {c}": t for c, t in self.cluster_tokens.items()},
        }
        return {name: forms(secret) for name, secret in named.items()}


def hub_settings(fleet: SimFleet, tmp_path: Path, receiver: Receiver, found: Secrets) -> Settings:
    secret_file = tmp_path / "flaky.secret"
    secret_file.write_text(found.flaky_secret + "\n")
    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    return parse_settings(
        {
            "zone": "global.example.com",
            "dns": {
                "host": "127.0.0.1",
                "port": 0,
                "nameservers": [{"name": "ns1.global.example.com", "addresses": ["127.0.0.1"]}],
            },
            "http": {"host": "127.0.0.1", "port": 0},
            "collect": {
                "interval": 0.3,
                "timeout": 1,
                "down_after_failures": 1,
                "up_after_successes": 1,
                "min_down_seconds": 0,
                "stale_after": 10,
            },
            "webhook_defaults": {"backoff_base": 0.05, "backoff_cap": 0.1},
            "webhooks": [
                {
                    "name": "pager",
                    "url": f"{receiver.url}/hooks/{found.url_token}?key={found.url_token}",
                    "secret": found.pager_secret,
                },
                {
                    "name": "flaky",
                    "url": f"{receiver.url}/broken/{found.url_token}",
                    "secret_file": str(secret_file),
                    "max_attempts": 2,
                },
            ],
            "clusters": [
                {
                    "name": c.name,
                    "region": c.region,
                    "kubeconfig": str(kubeconfig),
                    "context": c.name,
                    "prometheus_url": c.prometheus_url,
                }
                for c in fleet.clusters
            ],
        },
        source="security-suite",
    )


class Run:
    """Drives the hub and keeps every response body it saw."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen: list[str] = []
        self.metrics: list[str] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, body, response = await self.api.call(method, path, **kwargs)
        self.seen.append(f"{method} {path} -> {status} {dict(response.headers)} {body!r}")
        return status, body

    async def get(self, path: str, **kwargs: Any) -> Any:
        status, body = await self.call("GET", path, **kwargs)
        assert status == 200, (path, status, body)
        return body

    async def state(self, cluster: str) -> str:
        clusters = (await self.get("/api/v1/clusters"))["clusters"]
        return str({c["name"]: c["health"]["state"] for c in clusters}[cluster])

    async def wait_state(self, cluster: str, *states: str) -> None:
        async def reached() -> bool:
            return await self.state(cluster) in states

        await eventually(reached, limit=20)


async def drive(run: Run, fleet: SimFleet, receiver: Receiver) -> None:
    for cluster in fleet.names:
        await run.wait_state(cluster, "healthy")

    assert (await run.call("POST", "/api/v1/sim/clusters/us-east/outage"))[0] == 200
    await run.wait_state("us-east", "down")
    assert (await run.call("POST", "/api/v1/sim/clusters/us-east/recover"))[0] == 200
    await run.wait_state("us-east", "healthy", "degraded")

    # eu-west's API now wants another token: it refuses the one in the hub's kubeconfig.
    eu_west = fleet.cluster("eu-west")
    held = eu_west.token
    eu_west.token = secrets.token_urlsafe(32)
    await run.wait_state("eu-west", "down", "degraded")
    eu_west.token = held
    await run.wait_state("eu-west", "healthy")

    drain = {"cluster": "ap-south", "reason": "kernel upgrade", "by": "alice"}
    assert (await run.call("POST", "/api/v1/drains", json=drain))[0] == 201

    async def out_of_answers() -> bool:
        web = await run.get("/api/v1/services/default/web")
        return "ap-south" not in web["clusters_in_answer"]

    await eventually(out_of_answers)
    assert (await run.call("DELETE", "/api/v1/drains/ap-south"))[0] == 200

    labels = {"alertname": "NodeDown", "cluster": "eu-west", "severity": "critical"}
    alert = {"status": "firing", "labels": labels, "annotations": {"summary": "down"}}
    payload = {"version": "4", "status": "firing", "alerts": [alert]}
    assert (await run.call("POST", "/api/v1/alerts", json=payload))[0] == 200
    resolved = {**payload, "status": "resolved", "alerts": [{**alert, "status": "resolved"}]}
    assert (await run.call("POST", "/api/v1/alerts", json=resolved))[0] == 200

    async def delivered_and_dead() -> bool:
        dead = (await run.get("/api/v1/webhooks/dead-letters"))["total"]
        return receiver.delivered("/hooks/") >= 4 and dead >= 1

    await eventually(delivered_and_dead, limit=20)
    dead = (await run.get("/api/v1/webhooks/dead-letters"))["items"][0]
    status, _ = await run.call("POST", f"/api/v1/webhooks/dead-letters/{dead['id']}/retry")
    assert status == 202

    # Wrong and misplaced credentials are refused without an echo.
    basic = base64.b64encode(f"admin:{TOKEN}".encode()).decode()
    for authorization in (f"Bearer {TOKEN[:-1]}", f"Basic {basic}", f"bearer  {TOKEN}x"):
        status, _ = await run.call(
            "POST",
            "/api/v1/drains",
            json=drain,
            auth=False,
            headers={"Authorization": authorization},
        )
        assert status == 401


async def read_everything(run: Run, fleet: SimFleet) -> None:
    """Every GET endpoint (the sim's too), queries with data, /metrics in both formats."""
    samples = {"{namespace}": "default", "{name}": "web", "{cluster}": "eu-west"}
    for path, operations in openapi_document()["paths"].items():
        if "get" not in operations or path.endswith("/stream"):
            continue
        for placeholder, value in samples.items():
            path = path.replace(placeholder, value)
        await run.call("GET", path)
    for path, params in [
        ("/api/v1/query", {"query": "up"}),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "60", "step": "15"}),
        ("/api/v1/label/cluster/values", {}),
        ("/api/v1/resolve", {"name": "web.default.global.example.com", "client": "10.1.2.3"}),
        ("/api/v1/events", {"limit": "1000"}),
        ("/api/v1/sim/clusters", {}),
        *((f"/api/v1/sim/clusters/{c}", {}) for c in fleet.names),
    ]:
        await run.get(path, params=params)
    for accept in ("text/plain", "application/openmetrics-text; version=1.0.0"):
        status, body, response = await run.api.call("GET", "/metrics", headers={"Accept": accept})
        assert status == 200 and "mcobs_webhook_deliveries_total" in body
        run.metrics.append(f"{dict(response.headers)} {body}")

    first = (await run.get("/api/v1/events", params={"limit": "1000"}))["events"][-1]
    url = run.api.base + "/api/v1/events/stream"
    async with run.api.http.get(url, headers={"Last-Event-ID": first["id"]}) as stream:
        replay = b""
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                async for chunk in stream.content.iter_any():
                    replay += chunk
    assert b"event: " in replay
    run.seen.append(replay.decode())


def log_text(records: Iterable[logging.LogRecord]) -> str:
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    lines = []
    for record in records:
        lines.append(handler.format(record))
        lines.append(repr(record.args))
        lines.append(repr({k: v for k, v in vars(record).items() if k not in _PLAIN}))
    return "\n".join(lines)


_PLAIN = set(vars(logging.makeLogRecord({})))


def leaks(found: Secrets, places: dict[str, str]) -> list[str]:
    return [
        f"{name} in {place}"
        for name, variants in found.all().items()
        for place, text in places.items()
        if any(variant in text for variant in variants)
    ]


async def test_no_secret_reaches_logs_api_responses_metrics_or_webhooks(
    fleet: SimFleet, tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    found = Secrets(
        api_token=TOKEN,
        url_token=secrets.token_urlsafe(16),
        pager_secret=new_secret(random.SystemRandom()),
        flaky_secret=new_secret(random.SystemRandom()),
        cluster_tokens={c.name: c.token for c in fleet.clusters},
    )
    settings = hub_settings(fleet, tmp_path, receiver, found)
    async with running_hub(settings, extra_routes=sim_routes(fleet)) as api:
        run = Run(api)
        await drive(run, fleet, receiver)
        await read_everything(run, fleet)

    logs = log_text(caplog.records)
    # The scan means something only if the run logged what it did.
    for expected in ("drained ap-south by alice", "dead-letter", "eu-west", "us-east"):
        assert expected in logs, expected
    deliveries = [
        json.dumps({k: v for k, v in headers.items() if k.lower() != "host"}) + body.decode()
        for path, headers, body in receiver.requests
    ]
    assert (
        leaks(
            found,
            {
                "logs": logs,
                "API responses": "\n".join(run.seen),
                "metrics": "\n".join(run.metrics),
                "webhook deliveries": "\n".join(deliveries),
            },
        )
        == []
    )


def test_the_scan_finds_a_secret_in_any_of_its_forms() -> None:
    found = Secrets(
        api_token=TOKEN,
        url_token="url-token-123456",
        pager_secret=new_secret(random.Random(1)),
        flaky_secret=new_secret(random.Random(2)),
        cluster_tokens={"eu-west": "cluster-token-abcdef"},
    )
    key = base64.b64decode(found.flaky_secret.removeprefix("whsec_"))
    record = logging.makeLogRecord({"msg": "auth %s", "args": ("x",), "header": TOKEN})
    assert leaks(
        found,
        {
            "a log record's extra field": log_text([record]),
            "base64": base64.b64encode(b"cluster-token-abcdef").decode(),
            "key hex": key.hex(),
            "clean": "nothing to see",
        },
    ) == [
        "API token in a log record's extra field",
        "webhook secret (file) in key hex",
        "kubeconfig token of eu-west in base64",
    ]
