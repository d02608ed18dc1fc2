"""Measure the time from a simulated outage to the changed DNS answer.

Starts `mcobs demo --clusters 8` in a subprocess (embedded catalog, default
settings), then `--tries` times, each time on the next cluster: POST
.../outage, query DNS every 20 ms until that cluster's address has left the
answer, recover, and wait until it is back. Eight clusters, because a cluster
taken down four times within five minutes is held down by flap damping (as
designed), and a weighted answer holds up to eight clusters. Prints a table
and writes JSON.

    .venv/bin/python -m tests.bench.demo_failover --tries 10 --json artifacts/demo_failover.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

NAME = "web.default.global.example.com."
POLL = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answer(port: int) -> set[str]:
    query = dns.message.make_query(NAME, dns.rdatatype.A)
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return set()
    return {rr.address for rrset in response.answer for rr in rrset}


def post(url: str, body: bytes = b"") -> None:
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def wait_for(predicate, limit: float) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if predicate():
            return time.perf_counter() - start
        time.sleep(POLL)
    raise TimeoutError(f"no change within {limit}s")


def cluster_address(http: int, cluster: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/v1/services/default/web") as r:
        body = json.load(r)
    return next(c["addresses"][0] for c in body["clusters"] if c["cluster"] == cluster)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--json", default="artifacts/demo_failover.json")
    args = parser.parse_args()
    dns_port, http_port = free_port(), free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcobs",
            "--log-level",
            "warning",
            "demo",
            "--dns-port",
            str(dns_port),
            "--http-port",
            str(http_port),
            "--clusters",
            str(args.clusters),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(answer(dns_port)) == args.clusters, 30)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/clusters") as r:
            names = [c["name"] for c in json.load(r)["clusters"]]
        down: list[float] = []
        up: list[float] = []
        for n in range(args.tries):
            cluster = names[n % len(names)]
            address = cluster_address(http_port, cluster)
            base = f"http://127.0.0.1:{http_port}/api/v1/sim/clusters/{cluster}"
            start = time.perf_counter()
            post(base + "/outage")
            wait_for(lambda: address not in answer(dns_port) and answer(dns_port), 30)  # noqa: B023
            down.append(time.perf_counter() - start)
            start = time.perf_counter()
            post(base + "/recover")
            wait_for(lambda: address in answer(dns_port), 30)  # noqa: B023
            up.append(time.perf_counter() - start)
    finally:
        demo.terminate()
        demo.wait(10)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "tries": args.tries,
        "outage_to_answer_s": {"median": statistics.median(down), "max": max(down), "all": down},
        "recover_to_answer_s": {"median": statistics.median(up), "max": max(up), "all": up},
    }
    print(
        f"{'event':<22}{'median s':>10}{'max s':>10}"
        f"   ({args.tries} tries, {args.clusters} clusters)"
    )
    print(f"{'outage -> answer':<22}{statistics.median(down):>10.3f}{max(down):>10.3f}")
    print(f"{'recover -> answer':<22}{statistics.median(up):>10.3f}{max(up):>10.3f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
