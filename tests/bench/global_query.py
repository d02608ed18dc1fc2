"""The global query's overhead against asking one Prometheus directly.

Starts 3 simulated clusters and one real Prometheus (Debian's `prometheus`)
scraping each every second, and mcobs' query endpoints (`query_routes`) on a
loopback port. Then, for each query, `--runs` times in the same run and
interleaved (the order alternating), it times the query sent straight to one
Prometheus and the same query through mcobs, which fans it out to all three
and merges the answers. Prints a table of median and p95 latencies and writes
JSON.

    .venv/bin/python -m tests.bench.global_query --runs 300 --json artifacts/global_query.json
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
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from mcobs.query import Fanout, FanoutSettings, query_routes
from tests.prometheus_server import PROMETHEUS, PrometheusFleet
from tests.redis_server import free_port

QUERIES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("instant up", "query", {"query": "up"}),
    ("instant sum by (job)", "query", {"query": "sum by (job) (up)"}),
    ("range 5m/15s http_requests_total", "query_range", {"query": "http_requests_total"}),
)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 95),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
    }


async def timed(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.post(url, data=params) as response:
        body = await response.json()
    elapsed = time.perf_counter() - started
    if response.status != 200 or body.get("status") != "success" or body.get("warnings"):
        raise RuntimeError(f"{url}: {response.status} {str(body)[:300]}")
    return elapsed


async def measure(fleet: PrometheusFleet, runs: int, warmup: int) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as fanout_session, aiohttp.ClientSession() as client:
        fanout = Fanout(
            fanout_session, fleet.prometheus_urls, settings=FanoutSettings(cluster_timeout=5)
        )
        app = web.Application()
        app.add_routes(query_routes(fanout))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            mcobs = f"http://127.0.0.1:{port}/api/v1"
            one = f"{fleet.prometheus_urls()['eu-west']}/api/v1"
            at = time.time() - 1.1
            results = []
            for name, path, query in QUERIES:
                if path == "query":
                    params = {**query, "time": f"{at:.3f}"}
                else:
                    params = {**query, "start": f"{at - 300:.3f}", "end": f"{at:.3f}", "step": "15"}
                direct: list[float] = []
                through: list[float] = []
                for i in range(warmup + runs):
                    pair = [(direct, f"{one}/{path}"), (through, f"{mcobs}/{path}")]
                    for samples, url in pair if i % 2 == 0 else reversed(pair):
                        elapsed = await timed(client, url, params)
                        if i >= warmup:
                            samples.append(elapsed)
                d, t = summary(direct), summary(through)
                results.append(
                    {
                        "query": name,
                        "path": path,
                        "params": params,
                        "direct_one_prometheus": d,
                        "mcobs_fanout_3_clusters": t,
                        "overhead_median_ms": t["median_ms"] - d["median_ms"],
                        "ratio_median": t["median_ms"] / d["median_ms"],
                    }
                )
            return results
        finally:
            await runner.cleanup()


def prometheus_version() -> str:
    out = subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"


def table(results: list[dict[str, Any]], runs: int) -> str:
    lines = [
        f"global query overhead: {runs} runs each, interleaved, same run "
        "(direct = one Prometheus; mcobs = fan-out to 3 Prometheus + merge)",
        f"{'query':34} {'direct p50':>10} {'p95':>7} {'mcobs p50':>10} {'p95':>7} "
        f"{'+p50':>7} {'x':>5}",
    ]
    for r in results:
        d, t = r["direct_one_prometheus"], r["mcobs_fanout_3_clusters"]
        lines.append(
            f"{r['query']:34} {d['median_ms']:>8.2f}ms {d['p95_ms']:>5.2f}ms "
            f"{t['median_ms']:>8.2f}ms {t['p95_ms']:>5.2f}ms "
            f"{r['overhead_median_ms']:>5.2f}ms {r['ratio_median']:>5.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--json", type=Path, default=Path("artifacts/global_query.json"))
    args = parser.parse_args()
    with PrometheusFleet(3) as fleet:
        time.sleep(1.2)  # past the first scrape
        results = asyncio.run(measure(fleet, args.runs, args.warmup))
    print(table(results, args.runs))
    report = {
        "benchmark": "global_query",
        "runs": args.runs,
        "warmup": args.warmup,
        "clusters": 3,
        "prometheus": prometheus_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
