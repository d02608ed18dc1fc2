"""Soak run: `mcobs serve` with Redis against simulated clusters, under steady DNS load and
churn, for a while; records resource use and checks every sampled answer.

    .venv/bin/python -m tests.soak.soak                   # 20 minutes, 20 clusters
    .venv/bin/python -m tests.soak.soak --minutes 3 --json artifacts/soak-short.json

Not part of the test run (pytest does not collect it). What runs, all on 127.0.0.1:

* redis-server (no persistence), `python -m mcobs.sim --clusters N` in its own process,
  a webhook consumer (aiohttp, in this process) subscribed to every event, and
  `mcobs serve` with production collect settings (3 s sweeps and timeouts, hysteresis,
  flap damping), started through `tests.soak.instrumented` so the asyncio task count can
  be read (mcobs has no metric for it; see that module);
* DNS load: `dnsperf` (Debian package `dnsperf`) at `--qps`, run in back-to-back chunks
  of `--sample-every` seconds so that every sample has its own counts; without dnsperf,
  a Python UDP load generator does the same (the summary says which one ran);
* churn through the simulator's control API every `--churn-every` seconds: a cluster
  goes down (refused, or hanging: accepts and never answers) or recovers (at most
  `--max-down` down at once), or a Service's ready endpoints change.

Every `--sample-every` seconds it records the mcobs process's RSS, CPU (from
/proc/PID/stat), open fds, threads, asyncio tasks and event-loop lag, the DNS load's
answers, losses and rcodes, and checks the answers: `/api/v1/services` is read, every
service name is asked over DNS, `/api/v1/services` is read again, and each DNS answer
must be what the API says (its addresses a subset of the service's `answer`, NOERROR
with records when the service exists). When the catalog version moved between the two
reads and the answer matches neither, the check counts as unsettled (reported, not a
failure).

At the end it prints a table, writes JSON (`--json`, default artifacts/soak.json) and
exits 1 when RSS grew more than `--max-growth-mb` after the warm-up, when the RSS slope
exceeds `--max-slope-mb-per-hour` (judged only over windows of 10 minutes or more: a
short window's slope is mostly noise), when any answer was inconsistent, when more than
`--max-loss-percent` of the load's queries were lost, or when mcobs exited.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import dns.message
import dns.rcode

from tests.faults.harness import (
    ROOT,
    ZONE,
    ClusterEntry,
    ServeProcess,
    WebhookConsumer,
    ask,
    free_udp_port,
    get_json,
    serve_config,
)
from tests.redis_server import RedisServer, free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SLOPE_MIN_WINDOW = 600.0
"""The slope threshold is judged only over post-warm-up windows at least this long."""


# --- the mcobs process from the outside ------------------------------------------------------


@dataclass
class ProcSample:
    rss_mb: float
    cpu_seconds: float
    fds: int
    threads: int


def read_proc(pid: int) -> ProcSample:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcSample(rss_kb / 1024, cpu, fds, threads)


def last_task_line(path: Path) -> dict[str, Any]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return json.loads(lines[-1]) if lines else {}


# --- DNS load ----------------------------------------------------------------------------------


@dataclass
class LoadChunk:
    seconds: float
    sent: int = 0
    completed: int = 0
    lost: int = 0
    rcodes: dict[str, int] = field(default_factory=dict)
    avg_latency_ms: float = 0.0
    max_latency_ms: float = 0.0


def query_names(services: Sequence[str]) -> list[tuple[str, str]]:
    names = [(f"{s}.default.{ZONE}", "A") for s in services]
    names += [
        (f"web.default.{ZONE}", "AAAA"),
        (f"_http._tcp.web.default.{ZONE}", "SRV"),
        (f"eu-west.web.default.{ZONE}", "A"),
        (f"missing.default.{ZONE}", "A"),
        (ZONE, "SOA"),
    ]
    return names


_COUNT = re.compile(r"Queries (sent|completed|lost):\s+(\d+)")
_RCODES = re.compile(r"Response codes:\s+(.*)")
_LATENCY = re.compile(r"Average Latency \(s\):\s+([\d.]+) \(min [\d.]+, max ([\d.]+)\)")


def parse_dnsperf(text: str, seconds: float) -> LoadChunk:
    chunk = LoadChunk(seconds)
    counts = {kind: int(n) for kind, n in _COUNT.findall(text)}
    chunk.sent, chunk.completed, chunk.lost = (
        counts.get("sent", 0),
        counts.get("completed", 0),
        counts.get("lost", 0),
    )
    found = _RCODES.search(text)
    if found:
        for part in found.group(1).split(","):
            bits = part.split()
            if len(bits) >= 2 and bits[1].isdigit():
                chunk.rcodes[bits[0]] = int(bits[1])
    latency = _LATENCY.search(text)
    if latency:
        chunk.avg_latency_ms = float(latency.group(1)) * 1000
        chunk.max_latency_ms = float(latency.group(2)) * 1000
    return chunk


async def dnsperf_chunk(port: int, datafile: Path, qps: int, seconds: float) -> LoadChunk:
    process = await asyncio.create_subprocess_exec(
        "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(datafile),
        "-l", f"{seconds:g}", "-Q", str(qps), "-c", "4", "-q", "200", "-t", "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), seconds + 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return parse_dnsperf(out.decode(errors="replace"), seconds)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, float] = {}
        self.rcodes: Counter[str] = Counter()
        self.latencies: list[float] = []

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            reply = dns.message.from_wire(data)
        except Exception:
            self.rcodes["MALFORMED"] += 1
            return
        sent = self.waiting.pop(reply.id, None)
        if sent is not None:
            self.latencies.append(time.monotonic() - sent)
            self.rcodes[dns.rcode.to_text(reply.rcode())] += 1


async def python_chunk(
    port: int, names: Sequence[tuple[str, str]], qps: int, seconds: float
) -> LoadChunk:
    """The fallback load: `qps` UDP queries a second for `seconds`, 2 s timeout."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Collect, remote_addr=("127.0.0.1", port), family=socket.AF_INET
    )
    chunk = LoadChunk(seconds)
    try:
        start = time.monotonic()
        next_id = random.randrange(65536)
        while (now := time.monotonic()) - start < seconds:
            due = int((now - start) * qps) + 1 - chunk.sent
            for _ in range(max(0, due)):
                name, rdtype = names[chunk.sent % len(names)]
                query = dns.message.make_query(name, rdtype)
                next_id = (next_id + 1) % 65536
                query.id = next_id
                protocol.waiting[next_id] = time.monotonic()
                transport.sendto(query.to_wire())
                chunk.sent += 1
            await asyncio.sleep(0.005)
        for _ in range(200):  # up to 2 s, the timeout of the last queries
            if not protocol.waiting:
                break
            await asyncio.sleep(0.01)
    finally:
        transport.close()
    chunk.lost = len(protocol.waiting)
    chunk.completed = chunk.sent - chunk.lost
    chunk.rcodes = dict(protocol.rcodes)
    if protocol.latencies:
        chunk.avg_latency_ms = statistics.fmean(protocol.latencies) * 1000
        chunk.max_latency_ms = max(protocol.latencies) * 1000
    return chunk


# --- answers against the catalog ---------------------------------------------------------------


@dataclass
class Consistency:
    checks: int = 0
    inconsistent: int = 0
    unsettled: int = 0
    examples: list[str] = field(default_factory=list)


def _by_name(services: dict[str, Any]) -> dict[str, frozenset[str]]:
    return {s["dns_name"].rstrip(".").lower(): frozenset(s["answer"]) for s in services["services"]}


async def check_answers(http_port: int, dns_port: int, result: Consistency) -> None:
    before = await get_json(http_port, "/api/v1/services")
    names = sorted(_by_name(before))
    asked = {name: await ask(dns_port, name + ".", within=2.0) for name in names}
    after = await get_json(http_port, "/api/v1/services")
    was, now = _by_name(before), _by_name(after)
    settled = before["catalog_version"] == after["catalog_version"]
    for name, answer in asked.items():
        result.checks += 1
        expected = [s for s in (was.get(name), now.get(name)) if s is not None]
        fits = any(
            answer.rcode == "NOERROR"
            and bool(answer.records) == bool(allowed)
            and answer.records <= allowed
            for allowed in expected
        )
        if fits:
            continue
        api = [sorted(e) for e in expected]
        what = f"{name}: DNS {answer.rcode} {sorted(answer.records)}; API {api}"
        if settled:
            result.inconsistent += 1
            if len(result.examples) < 20:
                result.examples.append(what)
        else:
            result.unsettled += 1


# --- churn ---------------------------------------------------------------------------------------


@dataclass
class Churn:
    control: str
    clusters: list[str]
    max_down: int
    rng: random.Random
    down: set[str] = field(default_factory=set)
    actions: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    async def step(self, session: aiohttp.ClientSession) -> None:
        roll = self.rng.random()
        base = f"{self.control}/api/v1/sim/clusters"
        up = [c for c in self.clusters if c not in self.down]
        if roll < 0.35 and len(self.down) < self.max_down and up:
            name = self.rng.choice(up)
            mode = "hang" if self.rng.random() < 0.25 else "refuse"
            await self._post(session, f"{base}/{name}/outage", {"mode": mode})
            self.down.add(name)
            self.actions[f"outage_{mode}"] += 1
        elif roll < 0.65 and self.down:
            name = self.rng.choice(sorted(self.down))
            await self._post(session, f"{base}/{name}/recover", None)
            self.down.discard(name)
            self.actions["recover"] += 1
        else:
            name = self.rng.choice(self.clusters)
            service = self.rng.choice(["web", "api"])
            ready = self.rng.choice([0, 1, 2, 3, 3, 3])
            await self._post(
                session, f"{base}/{name}/services/default/{service}/ready", {"ready": ready}
            )
            self.actions["ready"] += 1

    async def _post(self, session: aiohttp.ClientSession, url: str, body: Any) -> None:
        async with session.post(url, json=body) as response:
            if response.status >= 400:
                self.errors += 1


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    rss_mb: float
    cpu_percent: float
    fds: int
    threads: int
    tasks: int | None
    loop_lag_ms: float | None
    dns_sent: int
    dns_lost: int
    dns_rcodes: dict[str, int]
    dns_max_latency_ms: float
    checks: int
    inconsistent: int
    clusters_down: int


async def start_sim(
    clusters: int, extra: int, workdir: Path
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    with (workdir / "sim.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mcobs.sim", "--clusters", str(clusters),
            "--extra-services", str(extra), "--kubeconfig", str(workdir / "kubeconfig"),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, cwd=ROOT,
        )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if not line:
        raise RuntimeError((workdir / "sim.log").read_text())
    return process, json.loads(line)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


async def run(args: argparse.Namespace) -> int:
    duration = args.minutes * 60
    workdir = Path(tempfile.mkdtemp(prefix="mcobs-soak-"))
    use_dnsperf = shutil.which("dnsperf") is not None and not args.python_load
    tasks_file = workdir / "tasks.jsonl"
    print(
        f"soak: {args.minutes:g} min, {args.clusters} clusters, {args.qps} qps with "
        f"{'dnsperf' if use_dnsperf else 'the Python UDP load'}; workdir {workdir}",
        flush=True,
    )
    code = 2
    try:
        async with contextlib.AsyncExitStack() as stack:
            redis = stack.enter_context(RedisServer())
            sim, fleet = await start_sim(args.clusters, args.extra_services, workdir)
            stack.push_async_callback(stop_process, sim)
            consumer = await stack.enter_async_context(WebhookConsumer())
            entries = [
                ClusterEntry(c["name"], c["region"], Path(fleet["kubeconfig"]), c["prometheus_url"])
                for c in fleet["clusters"]
            ]
            serve = ServeProcess(
                serve_config(
                    entries,
                    redis_url=redis.url,
                    prefix="soak",
                    dns_port=free_udp_port(),
                    http_port=free_port(),
                    webhook=(consumer.url, consumer.secret),
                    collect={  # the defaults of a real deployment
                        "interval": 3,
                        "timeout": 3,
                        "min_down_seconds": 5,
                        "flap_limit": 4,
                        "stale_after": 30,
                    },
                    decide={"lease_ttl": 10},
                ),
                workdir,
                launcher=(
                    "-m",
                    "tests.soak.instrumented",
                    "--tasks-file",
                    str(tasks_file),
                    "--every",
                    str(args.sample_every),
                ),
            )
            await serve.start()
            stack.push_async_callback(serve.stop)
            await serve.wait_ready(60)
            code = await _soak(args, duration, serve, fleet, consumer, use_dnsperf, tasks_file)
    finally:
        if code == 0 and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", flush=True)
    return code


async def _soak(
    args: argparse.Namespace,
    duration: float,
    serve: ServeProcess,
    fleet: dict[str, Any],
    consumer: WebhookConsumer,
    use_dnsperf: bool,
    tasks_file: Path,
) -> int:
    services = ["web", "api", *[f"svc-{i + 1:02d}" for i in range(args.extra_services)]]
    names = query_names(services)
    datafile = serve.workdir / "queries.txt"
    datafile.write_text("".join(f"{n} {t}\n" for n, t in names))
    names_seen: set[str] = set()

    async def settled() -> bool:
        got = await get_json(serve.http_port, "/api/v1/services")
        names_seen.update(s["name"] for s in got["services"])
        return set(services) <= names_seen

    deadline = time.monotonic() + 60
    while not await settled():
        if time.monotonic() > deadline:
            raise RuntimeError("the services did not all appear in 60 s")
        await asyncio.sleep(0.5)

    chunks: list[LoadChunk] = []
    churn = Churn(
        fleet["control"], [c["name"] for c in fleet["clusters"]], args.max_down,
        random.Random(args.seed),
    )  # fmt: skip
    consistency = Consistency()
    samples: list[Sample] = []
    start = time.monotonic()
    end = start + duration

    async def load() -> None:
        while time.monotonic() < end:
            seconds = min(args.sample_every, max(1.0, end - time.monotonic()))
            if use_dnsperf:
                chunks.append(await dnsperf_chunk(serve.dns_port, datafile, args.qps, seconds))
            else:
                chunks.append(await python_chunk(serve.dns_port, names, args.qps, seconds))

    async def churning() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while time.monotonic() < end:
                await asyncio.sleep(args.churn_every)
                try:
                    await churn.step(session)
                except (aiohttp.ClientError, TimeoutError):
                    churn.errors += 1

    load_task = asyncio.create_task(load())
    churn_task = asyncio.create_task(churning())
    died = False
    proc = read_proc(serve.pid)
    last_cpu, last_t = proc.cpu_seconds, time.monotonic()
    used = 0
    try:
        while time.monotonic() < end:
            await asyncio.sleep(min(args.sample_every, max(0.0, end - time.monotonic())))
            assert serve.process is not None
            if serve.process.returncode is not None:
                died = True
                break
            try:
                await check_answers(serve.http_port, serve.dns_port, consistency)
            except (aiohttp.ClientError, TimeoutError) as error:
                consistency.inconsistent += 1
                consistency.examples.append(f"API unavailable: {error!r}")
            proc = read_proc(serve.pid)
            now = time.monotonic()
            cpu = (proc.cpu_seconds - last_cpu) / (now - last_t) * 100
            last_cpu, last_t = proc.cpu_seconds, now
            fresh, used = chunks[used:], len(chunks)
            rcodes: Counter[str] = Counter()
            for chunk in fresh:
                rcodes.update(chunk.rcodes)
            tasks = last_task_line(tasks_file)
            sample = Sample(
                t=round(now - start, 1),
                rss_mb=round(proc.rss_mb, 2),
                cpu_percent=round(cpu, 1),
                fds=proc.fds,
                threads=proc.threads,
                tasks=tasks.get("tasks"),
                loop_lag_ms=round(tasks["lag_ms"], 2) if "lag_ms" in tasks else None,
                dns_sent=sum(c.sent for c in fresh),
                dns_lost=sum(c.lost for c in fresh),
                dns_rcodes=dict(rcodes),
                dns_max_latency_ms=round(max((c.max_latency_ms for c in fresh), default=0.0), 2),
                checks=consistency.checks,
                inconsistent=consistency.inconsistent,
                clusters_down=len(churn.down),
            )
            samples.append(sample)
            print(
                f"[{sample.t:7.1f}s] rss {sample.rss_mb:7.2f} MB  cpu {sample.cpu_percent:5.1f}%  "
                f"fds {sample.fds:4d}  tasks {sample.tasks}  lag {sample.loop_lag_ms} ms  "
                f"dns {sample.dns_sent} sent / {sample.dns_lost} lost  "
                f"checks {sample.checks} bad {sample.inconsistent}  down {sample.clusters_down}",
                flush=True,
            )
    finally:
        for task in (churn_task, load_task):
            task.cancel()
        await asyncio.gather(churn_task, load_task, return_exceptions=True)
    return report(args, samples, chunks, consistency, churn, consumer, died, use_dnsperf, duration)


def report(
    args: argparse.Namespace,
    samples: Sequence[Sample],
    chunks: Sequence[LoadChunk],
    consistency: Consistency,
    churn: Churn,
    consumer: WebhookConsumer,
    died: bool,
    use_dnsperf: bool,
    duration: float,
) -> int:
    steady = [s for s in samples if s.t >= args.warmup] or list(samples)
    first, last = (steady[0], steady[-1]) if steady else (None, None)
    window = (last.t - first.t) if first and last else 0.0
    slope = slope_per_hour([(s.t, s.rss_mb) for s in steady])
    growth = (last.rss_mb - first.rss_mb) if first and last else 0.0
    sent = sum(c.sent for c in chunks)
    lost = sum(c.lost for c in chunks)
    rcodes: Counter[str] = Counter()
    for chunk in chunks:
        rcodes.update(chunk.rcodes)
    loss_percent = lost / sent * 100 if sent else 100.0
    tasks = [s.tasks for s in samples if s.tasks is not None and s.tasks >= 0]
    lags = [s.loop_lag_ms for s in samples if s.loop_lag_ms is not None]
    failures = []
    if died:
        failures.append("mcobs serve exited during the run")
    if growth > args.max_growth_mb:
        failures.append(f"RSS grew {growth:.1f} MB after warm-up (limit {args.max_growth_mb})")
    if window >= SLOPE_MIN_WINDOW and slope > args.max_slope_mb_per_hour:
        failures.append(f"RSS slope {slope:.1f} MB/h (limit {args.max_slope_mb_per_hour})")
    if consistency.inconsistent:
        failures.append(f"{consistency.inconsistent} DNS answers disagreed with the catalog")
    if loss_percent > args.max_loss_percent:
        failures.append(f"{loss_percent:.3f}% of DNS queries lost (limit {args.max_loss_percent})")
    if not samples:
        failures.append("no samples")

    def span(values: Sequence[float | int]) -> str:
        if not values:
            return "-"
        return f"{values[0]:g} → {values[-1]:g} (max {max(values):g})"

    cpu = [s.cpu_percent for s in samples]
    judged = window >= SLOPE_MIN_WINDOW
    rows = [
        ("duration (min)", f"{duration / 60:g}", ""),
        ("clusters / services", f"{args.clusters} / {2 + args.extra_services}", ""),
        ("DNS load", "dnsperf" if use_dnsperf else "python UDP", f"{args.qps} qps"),
        (
            "RSS start → end (MB)",
            f"{first.rss_mb:.1f} → {last.rss_mb:.1f}" if first and last else "-",
            f"after {args.warmup:g}s warm-up",
        ),
        ("RSS growth (MB)", f"{growth:+.1f}", f"limit {args.max_growth_mb:g}"),
        (
            "RSS slope (MB/h)",
            f"{slope:+.1f}",
            f"limit {args.max_slope_mb_per_hour:g}"
            + ("" if judged else " (not judged: window < 10 min)"),
        ),
        (
            "CPU max / mean (%)",
            f"{max(cpu, default=0):.1f} / {statistics.fmean(cpu) if cpu else 0:.1f}",
            "of one core",
        ),
        ("open fds", span([s.fds for s in samples]), ""),
        ("threads", span([s.threads for s in samples]), ""),
        ("asyncio tasks", span(tasks), "via tests.soak.instrumented"),
        ("event-loop lag max (ms)", f"{max(lags):.1f}" if lags else "-", ""),
        ("DNS queries sent / lost", f"{sent} / {lost}", f"{loss_percent:.3f}% lost"),
        ("DNS rcodes", ", ".join(f"{k} {v}" for k, v in sorted(rcodes.items())), ""),
        (
            "DNS max latency (ms)",
            f"{max((c.max_latency_ms for c in chunks), default=0):.1f}",
            "",
        ),
        (
            "answer checks / inconsistent / unsettled",
            f"{consistency.checks} / {consistency.inconsistent} / {consistency.unsettled}",
            "",
        ),
        (
            "churn",
            ", ".join(f"{k} {v}" for k, v in sorted(churn.actions.items())),
            f"{churn.errors} control errors",
        ),
        (
            "webhook events received",
            str(len(consumer.events)),
            f"{sum(consumer.delivered.values()) - len(consumer.delivered)} repeats",
        ),
        ("result", "FAIL" if failures else "ok", "; ".join(failures)),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"| {'metric':<{width}} | value | note |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for name, value, note in rows:
        print(f"| {name:<{width}} | {value} | {note} |")
    out = {
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "dns_load": "dnsperf" if use_dnsperf else "python",
        "summary": {
            "rss_start_mb": first.rss_mb if first else None,
            "rss_end_mb": last.rss_mb if last else None,
            "rss_growth_mb": round(growth, 2),
            "rss_slope_mb_per_hour": round(slope, 2),
            "slope_judged": window >= SLOPE_MIN_WINDOW,
            "cpu_max_percent": max((s.cpu_percent for s in samples), default=0),
            "dns_sent": sent,
            "dns_lost": lost,
            "dns_rcodes": dict(rcodes),
            "checks": consistency.checks,
            "inconsistent": consistency.inconsistent,
            "unsettled": consistency.unsettled,
            "inconsistent_examples": consistency.examples,
            "churn": dict(churn.actions),
            "webhook_events": len(consumer.events),
            "failures": failures,
        },
        "samples": [asdict(s) for s in samples],
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nJSON: {path}")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument(
        "--extra-services", type=int, default=3, help="exported Services beyond web and api"
    )
    parser.add_argument("--qps", type=int, default=500)
    parser.add_argument("--sample-every", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--churn-every", type=float, default=3.0, metavar="SECONDS")
    parser.add_argument("--max-down", type=int, default=3, help="clusters down at once, at most")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        metavar="SECONDS",
        help="samples before this do not count for RSS growth and slope "
        "(default: a quarter of the run, at least 60 s)",
    )
    parser.add_argument("--max-growth-mb", type=float, default=64.0)
    parser.add_argument("--max-slope-mb-per-hour", type=float, default=30.0)
    parser.add_argument("--max-loss-percent", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python load even if dnsperf is there"
    )
    parser.add_argument("--json", default=str(ROOT / "artifacts" / "soak.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.warmup is None:
        args.warmup = max(60.0, args.minutes * 60 / 4)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
