"""Measure the time from a simulated outage to the changed DNS answer.

Starts `mcobs demo` in a subprocess (embedded catalog, default settings), then
`--tries` times: POST .../outage for a cluster, query DNS every 20 ms until
that cluster's address has left the answer, recover, and wait until it is back.
Prints a table and writes JSON.

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
    parser.add_argument("--cluster", default="us-east")
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
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(answer(dns_port)) == 3, 30)
        address = cluster_address(http_port, args.cluster)
        base = f"http://127.0.0.1:{http_port}/api/v1/sim/clusters/{args.cluster}"
        down: list[float] = []
        up: list[float] = []
        for _ in range(args.tries):
            start = time.perf_counter()
            post(base + "/outage")
            wait_for(lambda: address not in answer(dns_port) and answer(dns_port), 30)
            down.append(time.perf_counter() - start)
            start = time.perf_counter()
            post(base + "/recover")
            wait_for(lambda: address in answer(dns_port), 30)
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
    print(f"{'event':<22}{'median s':>10}{'max s':>10}   ({args.tries} tries)")
    print(f"{'outage -> answer':<22}{statistics.median(down):>10.3f}{max(down):>10.3f}")
    print(f"{'recover -> answer':<22}{statistics.median(up):>10.3f}{max(up):>10.3f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
