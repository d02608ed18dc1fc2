"""The README's quickstart, as a user runs it: `mcobs demo`, then dig and curl."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, free_port

NAME = "web.default.global.example.com"


def dig(port: int, *args: str) -> str:
    return subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+short", "+tries=1", "+time=2", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout


def http(port: int, path: str, body: bytes | None = None) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body is not None else "GET"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def wait_until(check: object, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@contextlib.contextmanager
def run_demo(*extra: str) -> Iterator[tuple[int, int, subprocess.Popen[str]]]:
    dns_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcobs",
            "demo",
            "--dns-port",
            str(dns_port),
            "--http-port",
            str(http_port),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield dns_port, http_port, process
    finally:
        process.terminate()
        process.wait(10)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


@pytest.fixture
def demo() -> Iterator[tuple[int, int, subprocess.Popen[str]]]:
    with run_demo() as running:
        yield running


def test_quickstart_session(demo: tuple[int, int, subprocess.Popen[str]]) -> None:
    dns_port, http_port, process = demo
    wait_until(lambda: len(dig(dns_port, NAME, "A").split()) == 3)
    assert sorted(dig(dns_port, NAME, "A").split()) == ["192.0.2.1", "198.51.100.1", "203.0.113.1"]
    srv = dig(dns_port, f"_http._tcp.{NAME}", "SRV").splitlines()
    assert len(srv) == 3 and all(line.split()[2] == "80" for line in srv)
    for line in srv:
        assert dig(dns_port, line.split()[3], "A").strip()

    clusters = http(http_port, "/api/v1/clusters")
    assert [c["name"] for c in clusters["clusters"]] == ["ap-south", "eu-west", "us-east"]  # type: ignore[index]
    services = http(http_port, "/api/v1/services")
    assert {s["name"] for s in services["services"]} == {"web", "api"}  # type: ignore[index]

    http(http_port, "/api/v1/sim/clusters/us-east/outage", b"")
    wait_until(lambda: "198.51.100.1" not in dig(dns_port, NAME, "A"), 10)
    http(http_port, "/api/v1/sim/clusters/us-east/recover", b"")
    wait_until(lambda: "198.51.100.1" in dig(dns_port, NAME, "A"), 10)

    http(http_port, "/api/v1/sim/clusters/eu-west/services/default/web/ready", b'{"ready": 0}')
    wait_until(lambda: "192.0.2.1" not in dig(dns_port, NAME, "A"), 10)
    assert len(dig(dns_port, "api.default.global.example.com", "A").split()) == 3

    assert process.stdout is not None
    banner = process.stdout.readline() + process.stdout.readline() + process.stdout.readline()
    assert "mcobs demo is running" in banner


def test_demo_with_a_redis_catalog() -> None:
    with RedisServer() as redis, run_demo("--redis-url", redis.url) as (dns_port, http_port, _):
        wait_until(lambda: len(dig(dns_port, NAME, "A").split()) == 3)
        clusters = http(http_port, "/api/v1/clusters")
        assert clusters["catalog_version"] > 0  # type: ignore[index]
