"""One replica against 10, 100 and 1,000 simulated clusters (issue 6).

For each fleet size N: the simulator runs in a process of its own (N clusters
x 50 exported Services, plus a `canary` Service), `mcobs serve` in another
with a real redis-server, and this script measures

- time to the first complete catalog (every cluster reported with all services),
- steady-state CPU (% of one core) and RSS of the mcobs process over 30 s, a minute
  after the first complete catalog (`--settle`),
- Redis commands per second in steady state, and Redis memory per service entry,
- time from an endpoint change in one cluster to the changed DNS answer
  (`canary` uses the failover strategy over every cluster in order, so turning
  the active cluster's endpoints unready, or ready again, moves the answer),
  over 200 changes: p50, p95, max.

With `--runs N` each size runs N times and the table shows medians (the JSON
keeps every run and the spread of start-up, CPU and RSS).

    .venv/bin/python -m tests.bench.scale --sizes 10,100,1000 --json artifacts/scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

import dns.asyncquery
import dns.exception
import dns.message
import redis
import yaml

from mcobs.config import CollectSettings
from tests.redis_server import RedisServer, free_port

ZONE = "global.example.com"
CANARY = f"canary.shop.{ZONE}."
TICK = os.sysconf("SC_CLK_TCK")
DEFAULTS = CollectSettings()  # the benchmark keeps every collect default


def sweep_interval(clusters: int) -> float:
    """Each cluster's sweep interval on one replica (`mcobs.collect.pace`)."""
    stretched = clusters / DEFAULTS.max_sweeps_per_second
    return min(DEFAULTS.stale_after / 3, max(DEFAULTS.interval, stretched))


CHANGE_LIMIT = 30.0
"""A change whose answer has not moved after this long counts as missed."""
MAX_MISSED = 3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def http(url: str, body: Any = None, method: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


async def first_answer(port: int) -> str | None:
    query = dns.message.make_query(CANARY, "A")
    try:
        response = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=1)
    except (dns.exception.Timeout, OSError):
        return None
    for rrset in response.answer:
        for rr in rrset:
            return str(rr.to_text())
    return None


async def measure_changes(
    control: str, names: list[str], port: int, changes: int
) -> tuple[list[float], int]:
    """Alternately take the active canary cluster's endpoints away and give them back.

    Returns the times of the changes that reached DNS within `CHANGE_LIMIT`, and how
    many did not (after `MAX_MISSED` such, the run stops measuring)."""
    durations: list[float] = []
    missed = 0
    active = await first_answer(port)
    for n in range(changes):
        cluster = names[0]
        ready = 0 if n % 2 == 0 else 3
        start = time.perf_counter()
        await asyncio.to_thread(
            http,
            f"{control}/api/v1/sim/clusters/{cluster}/services/shop/canary/ready",
            {"ready": ready},
        )
        while time.perf_counter() - start < CHANGE_LIMIT:
            now = await first_answer(port)
            if now is not None and now != active:
                active = now
                durations.append(time.perf_counter() - start)
                break
            await asyncio.sleep(0.005)
        else:
            missed += 1
            active = await first_answer(port)
            if missed >= MAX_MISSED:
                break
    return durations, missed


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of medians over runs of the same size (with every run kept), plus the
    spread of the figures that vary most on a noisy machine."""
    if len(runs) == 1:
        return runs[0]
    row: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            row[key] = {k: statistics.median(r[key][k] for r in runs) for k in value}
            row[key]["missed"] = sum(r[key]["missed"] for r in runs)
            row[key]["changes"] = sum(r[key]["changes"] for r in runs)
        elif isinstance(value, float | int) and key != "clusters":
            row[key] = round(statistics.median(r[key] for r in runs), 3)
        else:
            row[key] = value
    row["spread"] = {
        key: [min(r[key] for r in runs), max(r[key] for r in runs)]
        for key in ("first_complete_catalog_s", "steady_cpu_percent_of_one_core", "rss_mb")
    }
    row["runs"] = runs
    return row


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_summary(durations: list[float], missed: int) -> dict[str, Any]:
    """Changes timed until DNS answered them: how many, how many missed, p50/p95/max."""
    return {
        "changes": len(durations),
        "missed": missed,
        "p50": round(statistics.median(durations), 4) if durations else None,
        "p95": round(percentile(durations, 0.95), 4) if durations else None,
        "max": round(max(durations), 4) if durations else None,
    }


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """One line per row: `columns` are (header, key); the change latencies follow."""
    latency = [("p50 s", "p50"), ("p95 s", "p95"), ("max s", "max"), ("missed", "missed")]
    headers = [h for h, _ in columns + latency]
    widths = [max(len(h), 7) for h in headers]
    print("\n" + " ".join(f"{h:>{w}}" for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        cells = [row[key] for _, key in columns]
        cells += [row["change_to_answer_s"][key] for _, key in latency]
        print(" ".join(f"{c!s:>{w}}" for c, w in zip(cells, widths, strict=True)))


def write_report(path: str, rows: list[dict[str, Any]]) -> None:
    """The rows as JSON, with the machine they were measured on."""
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "sizes": rows,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2))


def start_sim(clusters: int, kubeconfig: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """The simulator in a process of its own: `clusters` clusters x 50 exported Services."""
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcobs.sim",
            "--clusters",
            str(clusters),
            "--kubeconfig",
            str(kubeconfig),
            "--extra-services",
            "48",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None
    return sim, json.loads(sim.stdout.readline())


def write_config(
    path: Path, fleet: dict[str, Any], redis_url: str, dns_port: int, http_port: int
) -> None:
    """`mcobs serve`'s configuration for the fleet, with every `collect` default."""
    config = {
        "zone": ZONE,
        "dns": {"host": "127.0.0.1", "port": dns_port},
        "http": {"host": "127.0.0.1", "port": http_port},
        "redis": {"url": redis_url},
        "clusters": [
            {
                "name": c["name"],
                "region": c["region"],
                "kubeconfig": fleet["kubeconfig"],
                "context": c["context"],
                "prometheus_url": c["prometheus_url"],
            }
            for c in fleet["clusters"]
        ],
    }
    path.write_text(yaml.safe_dump(config))


def start_hub(config: Path, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """`mcobs serve`; its warnings go to `log` (else only errors, to nowhere)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcobs",
            "--log-level",
            "warning" if log else "error",
            "serve",
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
    )


def run_size(
    n: int,
    changes: int,
    steady: float,
    workdir: Path,
    hub_log: str | None = None,
    settle: float = 60.0,
) -> dict[str, Any]:
    sim, fleet = start_sim(n, workdir / f"kubeconfig-{n}")
    control = fleet["control"]
    names = [c["name"] for c in fleet["clusters"]]
    for name in names:
        http(
            f"{control}/api/v1/sim/clusters/{name}/services/shop/canary",
            {
                "type": "LoadBalancer",
                "ports": [{"name": "http", "port": 80}],
                "addresses": [f"10.{i // 250}.{i % 250}.1" for i in [names.index(name)]],
                "annotations": {
                    "mcobs.io/global": "true",
                    "mcobs.io/strategy": "failover",
                    "mcobs.io/failover-order": ",".join(names),
                },
            },
            method="PUT",
        )
    with RedisServer() as redis_server:
        dns_port, http_port = free_port(), free_port()
        config_path = workdir / f"mcobs-{n}.yaml"
        write_config(config_path, fleet, redis_server.url, dns_port, http_port)
        started = time.perf_counter()
        log = open(hub_log, "ab") if hub_log else None  # noqa: SIM115
        hub = start_hub(config_path, log)
        client = redis.Redis.from_url(redis_server.url)
        try:
            while True:
                try:
                    body = http(f"http://127.0.0.1:{http_port}/api/v1/clusters")
                    done = [
                        c for c in body["clusters"] if c["services"] >= 51 and c["services_synced"]
                    ]
                    if len(done) == n:
                        break
                except OSError:
                    pass
                if time.perf_counter() - started > 600:
                    raise TimeoutError("no complete catalog in 600 s")
                time.sleep(0.5)
            complete = time.perf_counter() - started
            time.sleep(settle)  # let the start-up's aftermath (plans, retries) finish
            cpu0, ops0, t0 = (
                cpu_seconds(hub.pid),
                client.info("stats")["total_commands_processed"],
                time.perf_counter(),
            )
            time.sleep(steady)
            elapsed = time.perf_counter() - t0
            cpu = (cpu_seconds(hub.pid) - cpu0) / elapsed * 100
            ops = (client.info("stats")["total_commands_processed"] - ops0) / elapsed
            rss = rss_mb(hub.pid)
            memory = client.info("memory")["used_memory"]
            entries = n * 51
            ops1, t1 = client.info("stats")["total_commands_processed"], time.perf_counter()
            durations, missed = asyncio.run(measure_changes(control, names, dns_port, changes))
            ops_during = client.info("stats")["total_commands_processed"] - ops1
            per_change = (ops_during - ops * (time.perf_counter() - t1)) / max(1, changes)
        finally:
            hub.terminate()
            hub.wait(30)
            if log:
                log.close()
            client.close()
            sim.terminate()
            sim.wait(30)
    return {
        "clusters": n,
        "services_per_cluster": 51,
        "first_complete_catalog_s": round(complete, 2),
        "steady_cpu_percent_of_one_core": round(cpu, 1),
        "rss_mb": round(rss, 1),
        "redis_ops_per_s": round(ops, 1),
        "sweep_interval_s": sweep_interval(n),
        "redis_ops_per_sweep": round(ops / (n / sweep_interval(n)), 3),
        "redis_ops_per_change": round(per_change, 1),
        "redis_bytes_per_service_entry": round(memory / entries),
        "change_to_answer_s": latency_summary(durations, missed),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--steady", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after start-up")
    parser.add_argument("--runs", type=int, default=1, help="runs per size (medians reported)")
    parser.add_argument("--json", default="artifacts/scale.json")
    parser.add_argument("--hub-log", help="append the hub's warnings to this file")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mcobs-scale-"))
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        runs = []
        for _ in range(args.runs):
            run = run_size(n, args.changes, args.steady, workdir, args.hub_log, args.settle)
            print(json.dumps(run), flush=True)
            runs.append(run)
        rows.append(median_row(runs))
    print_table(
        rows,
        [
            ("clusters", "clusters"),
            ("catalog s", "first_complete_catalog_s"),
            ("CPU %", "steady_cpu_percent_of_one_core"),
            ("RSS MB", "rss_mb"),
            ("redis op/s", "redis_ops_per_s"),
            ("op/sweep", "redis_ops_per_sweep"),
            ("op/change", "redis_ops_per_change"),
            ("B/entry", "redis_bytes_per_service_entry"),
        ],
    )
    write_report(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
