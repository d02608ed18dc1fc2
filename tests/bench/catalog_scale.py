"""How big a catalog one replica can serve (issue 6: sizing for 10,000 clusters).

With sharded collection a replica collects its share of the clusters, but it
still reads, plans and answers DNS for every cluster in the catalog. The scale
benchmark (`tests.bench.scale`) measures collection; this one measures serving:

- one `mcobs serve` collects one simulated cluster (51 exported Services) and
  writes its report to a real redis-server;
- this script copies that report into N more clusters (each with its own
  address), written straight into the catalog the way other replicas' collectors
  would, and heartbeats every one of them every `stale_after / 3`;
- it reports the time until the replica serves all N (DNS answers a Service
  exported only by the last cluster written, and the API lists N + 1 clusters),
  the steady CPU (% of one core) and RSS of the replica a minute later over 30 s,
  one scrape of its /metrics (seconds, size, series),
  and the time from a change in one cluster (a Service appearing or going away)
  to the changed DNS answer: p50, p95, max.

    .venv/bin/python -m tests.bench.catalog_scale --sizes 1000,3000,10000 \
        --json artifacts/catalog_scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

from mcobs.catalog.redis import RedisCatalog
from mcobs.config import CollectSettings
from mcobs.model import ClusterReport, ClusterService, ServiceKey
from tests.bench.scale import (
    ZONE,
    cpu_seconds,
    http,
    latency_summary,
    print_table,
    rss_mb,
    start_hub,
    start_sim,
    write_config,
    write_report,
)
from tests.redis_server import RedisServer, free_port

HEARTBEAT_EVERY = CollectSettings().stale_after / 3
WRITES_IN_FLIGHT = 64
CHANGE_LIMIT = 60.0
LOAD_LIMIT = 900.0


def copy_of(
    template: ClusterReport, index: int, extra: tuple[ClusterService, ...] = ()
) -> ClusterReport:
    """The template's report as cluster `edge-<index>`, behind an address of its own."""
    name = f"edge-{index:05d}"
    address = f"10.{100 + index // 65536}.{index // 256 % 256}.{index % 256}"
    services = tuple(
        replace(s, cluster=name, addresses=(address,)) for s in template.services
    ) + tuple(replace(s, cluster=name, addresses=(address,)) for s in extra)
    return replace(template, cluster=name, observed_at=time.time(), services=services)


def marker(template: ClusterReport, name: str) -> ClusterService:
    """A global Service that only one cluster exports, to see when DNS has it."""
    base = template.services[0]
    return replace(
        base,
        key=ServiceKey("bench", name),
        ready_endpoints=1,
        total_endpoints=1,
        annotations={"mcobs.io/global": "true"},
        problems=(),
        health=None,
    )


def scrape(http_port: int) -> tuple[float, int, int]:
    """One scrape of /metrics, as Prometheus would: seconds, bytes, series."""
    start = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=300) as response:
        body = response.read()
    took = time.perf_counter() - start
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return took, len(body), series


async def rcode_of(name: str, port: int) -> int | None:
    query = dns.message.make_query(f"{name}.bench.{ZONE}.", "A")
    try:
        response = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
    except (dns.exception.Timeout, OSError):
        return None
    return response.rcode() if response.answer or response.rcode() != dns.rcode.NOERROR else None


async def wait_for_rcode(name: str, port: int, wanted: int, limit: float) -> float | None:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if await rcode_of(name, port) == wanted:
            return time.perf_counter() - start
        await asyncio.sleep(0.01)
    return None


async def heartbeats(store: RedisCatalog, names: list[str], stop: asyncio.Event) -> None:
    """Every cluster's heartbeat every `HEARTBEAT_EVERY` s, as their collectors would."""
    slots = asyncio.Semaphore(WRITES_IN_FLIGHT)

    async def beat(name: str) -> None:
        async with slots:
            await store.heartbeat(name, time.time())

    while not stop.is_set():
        started = time.monotonic()
        await asyncio.gather(*(beat(n) for n in names))
        rest = HEARTBEAT_EVERY - (time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, rest))


@dataclass(frozen=True, slots=True)
class Replica:
    """The `mcobs serve` under measurement."""

    pid: int
    http_port: int
    dns_port: int


@dataclass(frozen=True, slots=True)
class Pace:
    changes: int
    settle: float
    steady: float


async def measure(
    n: int, template: ClusterReport, store: RedisCatalog, replica: Replica, pace: Pace
) -> dict[str, Any]:
    hub_pid, http_port, dns_port = replica.pid, replica.http_port, replica.dns_port
    changes, settle, steady = pace.changes, pace.settle, pace.steady
    slots = asyncio.Semaphore(WRITES_IN_FLIGHT)

    async def put(report: ClusterReport) -> None:
        async with slots:
            await store.put(report)

    started = time.perf_counter()
    last = n - 1
    await asyncio.gather(*(put(copy_of(template, i)) for i in range(last)))
    await put(copy_of(template, last, (marker(template, "loaded"),)))
    written = time.perf_counter() - started
    if await wait_for_rcode("loaded", dns_port, dns.rcode.NOERROR, LOAD_LIMIT) is None:
        raise TimeoutError(f"the replica did not serve {n} clusters in {LOAD_LIMIT} s")
    for _ in range(int(LOAD_LIMIT)):  # the API's view follows the same snapshot
        if len(http(f"http://127.0.0.1:{http_port}/api/v1/clusters")["clusters"]) > n:
            break
        await asyncio.sleep(1)
    loaded = time.perf_counter() - started

    stop = asyncio.Event()
    beating = asyncio.create_task(heartbeats(store, [f"edge-{i:05d}" for i in range(n)], stop))
    try:
        await asyncio.sleep(settle)
        cpu0, t0 = cpu_seconds(hub_pid), time.perf_counter()
        await asyncio.sleep(steady)
        cpu = (cpu_seconds(hub_pid) - cpu0) / (time.perf_counter() - t0) * 100
        rss = rss_mb(hub_pid)
        scrape_s, scrape_bytes, series = await asyncio.to_thread(scrape, http_port)

        rng = random.Random(n)
        durations: list[float] = []
        missed = 0

        async def change(report: ClusterReport, name: str, rcode: int) -> None:
            nonlocal missed
            start = time.perf_counter()
            await store.put(report)
            if await wait_for_rcode(name, dns_port, rcode, CHANGE_LIMIT) is None:
                missed += 1
            else:
                durations.append(time.perf_counter() - start)

        for k in range(changes):
            index, name = rng.randrange(n), f"change{k}"
            await change(
                copy_of(template, index, (marker(template, name),)), name, dns.rcode.NOERROR
            )
            await change(copy_of(template, index), name, dns.rcode.NXDOMAIN)
    finally:
        stop.set()
        await beating
    return {
        "catalog_clusters": n + 1,
        "services_per_cluster": len(template.services),
        "written_s": round(written, 2),
        "served_s": round(loaded, 2),
        "steady_cpu_percent_of_one_core": round(cpu, 1),
        "rss_mb": round(rss, 1),
        "metrics_scrape_s": round(scrape_s, 2),
        "metrics_scrape_mb": round(scrape_bytes / 1e6, 1),
        "metrics_series": series,
        "change_to_answer_s": latency_summary(durations, missed),
    }


def run_size(n: int, pace: Pace, workdir: Path) -> dict[str, Any]:
    sim, fleet = start_sim(1, workdir / f"kubeconfig-{n}")
    try:
        with RedisServer() as redis_server:
            dns_port, http_port = free_port(), free_port()
            config_path = workdir / f"mcobs-{n}.yaml"
            write_config(config_path, fleet, redis_server.url, dns_port, http_port)
            hub = start_hub(config_path)
            try:
                return asyncio.run(
                    _with_template(
                        n,
                        redis_server.url,
                        fleet["clusters"][0]["name"],
                        Replica(hub.pid, http_port, dns_port),
                        pace,
                    )
                )
            finally:
                hub.terminate()
                hub.wait(60)
    finally:
        sim.terminate()
        sim.wait(30)


async def _with_template(
    n: int, url: str, collected: str, replica: Replica, pace: Pace
) -> dict[str, Any]:
    store = RedisCatalog.from_url(url, timeout=10.0)
    try:
        deadline = time.monotonic() + 120
        while True:
            template = (await store.snapshot()).reports.get(collected)
            if template is not None and template.services_synced and len(template.services) >= 49:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{collected} never reported its services")
            await asyncio.sleep(0.5)
        return await measure(n, template, store, replica, pace)
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,3000,10000")
    parser.add_argument("--changes", type=int, default=50, help="each one way and back")
    parser.add_argument("--settle", type=float, default=60.0)
    parser.add_argument("--steady", type=float, default=30.0)
    parser.add_argument("--json", default="artifacts/catalog_scale.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mcobs-catalog-scale-"))
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        row = run_size(n, Pace(args.changes, args.settle, args.steady), workdir)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print_table(
        rows,
        [
            ("clusters", "catalog_clusters"),
            ("written s", "written_s"),
            ("served s", "served_s"),
            ("CPU %", "steady_cpu_percent_of_one_core"),
            ("RSS MB", "rss_mb"),
            ("scrape s", "metrics_scrape_s"),
            ("series", "metrics_series"),
        ],
    )
    write_report(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
