"""Two `mcobs serve` replicas on one Redis, simulated clusters in a process of their own:
the leader records a cluster going down, is killed, the other replica takes over within
the lease time and records the recovery; both replicas serve the same event log."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.redis_server import RedisServer, free_port

LEASE_TTL = 2.0
MARGIN = 3.0
"""Polling and scheduling slack on a busy 2-core machine."""

_T = TypeVar("_T")

pytestmark = pytest.mark.slow


def http(url: str, body: bytes | None = None) -> Any:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def eventually(probe: Callable[[], _T | None], within: float, what: str) -> _T:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            found = probe()
            if found is not None:
                return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {within}s")


@contextlib.contextmanager
def started(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class Replica:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def leader(self) -> dict[str, Any]:
        body: dict[str, Any] = http(self.url + "/api/v1/leader")
        return body

    def state_changes(self, cluster: str) -> list[tuple[str, str]]:
        body = http(f"{self.url}/api/v1/events?type=cluster.state_changed&cluster={cluster}")
        return [(e["data"]["from"], e["data"]["to"]) for e in reversed(body["events"])]


def test_a_killed_leader_is_replaced_and_decisions_carry_on(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    sim_args = [sys.executable, "-m", "mcobs.sim", "--clusters", "2"]
    sim_args += ["--kubeconfig", str(kubeconfig), "--control-port", "0"]
    with started(sim_args, tmp_path / "sim.log") as sim:

        def described() -> dict[str, Any] | None:
            lines = (tmp_path / "sim.log").read_text().splitlines()
            return json.loads(lines[0]) if lines else None

        fleet = eventually(described, 30, "simulated clusters started")
        ports = [free_port() for _ in range(2)]
        configs = []
        for n, port in enumerate(ports):
            config = {
                "zone": "global.example.com",
                "dns": {"host": "127.0.0.1", "port": free_port()},
                "http": {"host": "127.0.0.1", "port": port},
                "redis": {"url": redis_server.url, "prefix": "serve-takeover"},
                "decide": {"lease_ttl": LEASE_TTL},
                "collect": {"interval": 1.0},
                "clusters": [{**c, "kubeconfig": fleet["kubeconfig"]} for c in fleet["clusters"]],
            }
            path = tmp_path / f"replica-{n}.yaml"
            path.write_text(yaml.safe_dump(config))
            configs.append(path)
        check = subprocess.run(
            [sys.executable, "-m", "mcobs", "check-config", str(configs[0])],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr

        serve = [sys.executable, "-m", "mcobs", "serve", "--config"]
        with (
            started([*serve, str(configs[0])], tmp_path / "replica-0.log") as first,
            started([*serve, str(configs[1])], tmp_path / "replica-1.log") as second,
        ):
            replicas = [Replica(port) for port in ports]
            processes = [first, second]

            def agreed_leader() -> int | None:
                views = [r.leader() for r in replicas]
                leading = [i for i, v in enumerate(views) if v["replica"]["is_leader"]]
                same = views[0]["leader"] is not None and views[0]["leader"] == views[1]["leader"]
                return leading[0] if len(leading) == 1 and same else None

            index = eventually(agreed_leader, 60, "one leader both replicas agree on")
            leader, follower = replicas[index], replicas[1 - index]
            old = leader.leader()["leader"]

            http(f"{fleet['control']}/api/v1/sim/clusters/us-east/outage", b"{}")

            def went_down() -> bool | None:
                return ("healthy", "down") in follower.state_changes("us-east") or None

            eventually(went_down, 30, "the leader recorded us-east going down (seen elsewhere)")

            processes[index].kill()  # SIGKILL: the lease is not released, it runs out
            killed_at = time.monotonic()
            processes[index].wait(10)

            def took_over() -> dict[str, Any] | None:
                view = follower.leader()
                return view if view["replica"]["is_leader"] else None

            taken = eventually(took_over, LEASE_TTL + 10, "the other replica took over")
            assert time.monotonic() - killed_at <= LEASE_TTL + MARGIN
            assert taken["leader"]["token"] > old["token"]
            assert taken["leader"]["holder"] == taken["replica"]["holder"] != old["holder"]

            http(f"{fleet['control']}/api/v1/sim/clusters/us-east/recover", b"{}")

            def came_back() -> list[tuple[str, str]] | None:
                changes = follower.state_changes("us-east")
                return changes if changes and changes[-1][1] == "healthy" else None

            changes = eventually(came_back, 60, "the new leader recorded us-east coming back")
            assert changes.count(("healthy", "down")) == 1  # no repeat after the takeover
            assert follower.state_changes("eu-west") == []  # and no flood from the new leader
        assert sim.poll() is None
