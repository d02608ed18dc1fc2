"""DNS throughput and latency: mcobs against NSD on the same zone.

    .venv/bin/python -m tests.bench.dns_throughput [--json PATH] [--seconds S] [--runs N]

Needs `nsd`, `dnsperf`, `gcc` and `taskset` (Debian: `apt-get install nsd dnsperf`).
NSD serves a zone file generated from the same ZoneView mcobs serves. Each server is
pinned to CPU 0, the load to CPU 1. Load comes from a small C generator (batching
`sendmmsg`, closed loop) and from dnsperf; the query mix is 40% A, 20% AAAA, 20% SRV,
20% names that do not exist, with EDNS. After a warm-up, every figure is the median of
`--runs` rounds, each round running every measurement once (so a busy moment on a
shared machine hits NSD and mcobs alike).
Also measured: latency at 20% of mcobs' best rate; 2 workers sharing the port with
SO_REUSEPORT; queries carrying ECS; and what a catalog change costs the answer cache.
Prints a table and writes JSON (default artifacts/dns_throughput.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dns.edns
import dns.message
import dns.query
import dns.rcode

from mcobs.dnsserver import Responder
from tests.bench import dns_loadgen
from tests.bench.dns_zone import ZONE, bench_view, query_mix, service_name, zone_file

SERVER_CPU = 0
LOAD_CPU = 1
Job = Callable[[], dict[str, float]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port: int = udp.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", port))  # free for TCP as well
    return port


def wait_until_answering(port: int, seconds: float = 20) -> None:
    query = dns.message.make_query(service_name(0), "A")
    deadline = time.monotonic() + seconds
    while True:
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.3)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


NSD_CONF = """server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    pidfile: "{dir}/nsd.pid"
    database: ""
    xfrdfile: "{dir}/xfrd.state"
    zonelistfile: "{dir}/zone.list"
    logfile: "{dir}/nsd.log"
    verbosity: 0
    hide-version: yes
    minimal-responses: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: zone.db
"""


@contextlib.contextmanager
def nsd(directory: Path, services: int) -> Iterator[int]:
    work = directory / "nsd"
    work.mkdir()
    (work / "zone.db").write_text(zone_file(bench_view(services)))
    port = free_port()
    conf = work / "nsd.conf"
    conf.write_text(NSD_CONF.format(port=port, dir=work, zone=ZONE))
    process = subprocess.Popen(["taskset", "-c", str(SERVER_CPU), "nsd", "-d", "-c", str(conf)])
    try:
        wait_until_answering(port)
        yield port
    finally:
        stop(process)


@contextlib.contextmanager
def mcobs(services: int, cpus: Sequence[int]) -> Iterator[int]:
    """One worker per entry of `cpus`, each pinned there, sharing one port."""
    port = free_port()
    workers: list[subprocess.Popen[str]] = []
    try:
        for cpu in cpus:
            command = ["taskset", "-c", str(cpu), sys.executable, "-m", "tests.bench.dns_serve"]
            worker = subprocess.Popen(
                [*command, str(port), str(services)], stdout=subprocess.PIPE, text=True
            )
            workers.append(worker)
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError(f"mcobs worker did not start: {line!r}")
        wait_until_answering(port)
        yield port
    finally:
        for worker in workers:
            stop(worker)


# -- load ------------------------------------------------------------------------------


def dnsperf(port: int, queries: Path, seconds: float, rate: float = 0) -> dict[str, float]:
    command = ["taskset", "-c", str(LOAD_CPU), "dnsperf", "-s", "127.0.0.1", "-p", str(port)]
    command += ["-d", str(queries), "-l", str(seconds), "-c", "8", "-q", "100", "-e", "-t", "1"]
    if rate:
        command += ["-Q", str(int(rate))]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    latency = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    if not (qps and latency and lost and sent):
        raise RuntimeError(f"unexpected dnsperf output:\n{out}")
    return {
        "qps": float(qps.group(1)),
        "latency_mean_us": float(latency.group(1)) * 1e6,
        "lost": float(lost.group(1)),
        "sent": float(sent.group(1)),
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


class Bench:
    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.args = args
        self.directory = directory
        self.binary = dns_loadgen.build(directory)
        mix = query_mix(args.services)
        self.queries = directory / "queries.bin"
        dns_loadgen.write_queries(self.queries, (wire(name, rdtype) for name, rdtype in mix))
        self.text = directory / "queries.txt"
        self.text.write_text("".join(f"{name} {rdtype}\n" for name, rdtype in mix))
        rng = random.Random(5)
        self.ecs_queries = directory / "queries-ecs.bin"
        dns_loadgen.write_queries(
            self.ecs_queries,
            (
                wire(name, rdtype, ecs=f"{rng.randrange(1, 224)}.{rng.randrange(256)}.0.0")
                for name, rdtype in mix
            ),
        )

    def loadgen(self, port: int, *, rate: float = 0, ecs: bool = False) -> Job:
        def run() -> dict[str, float]:
            return dns_loadgen.run(
                self.binary,
                port,
                self.ecs_queries if ecs else self.queries,
                seconds=self.args.seconds,
                rate=rate,
                outstanding=self.args.outstanding,
                cpu=(LOAD_CPU,),
            )

        return run

    def warm_up(self, *ports: int) -> None:
        """A second of load on each server first, so measurements see a warm answer cache."""
        for port in ports:
            for queries in (self.queries, self.ecs_queries):
                dns_loadgen.run(self.binary, port, queries, seconds=1, cpu=(LOAD_CPU,))

    def dnsperf(self, port: int, rate: float = 0) -> Job:
        return lambda: dnsperf(port, self.text, self.args.seconds, rate)

    def rounds(self, **jobs: Job) -> dict[str, dict[str, float]]:
        """Each job once per round, `--runs` rounds (so a busy moment hits all alike): medians."""
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in jobs}
        for _ in range(self.args.runs):
            for name, job in jobs.items():
                runs[name].append(job())
        return {name: median_of(results) for name, results in runs.items()}


def wire(name: str, rdtype: str, ecs: str | None = None) -> bytes:
    options: list[dns.edns.Option] = [dns.edns.ECSOption(ecs, 16)] if ecs else []
    query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, options=options)
    query.id = 0
    return query.to_wire()


def same_answers(nsd_port: int, mcobs_port: int, services: int) -> int:
    """Both servers give the same rcode and records for a sample; returns the count checked."""
    checked = 0
    for name, rdtype in query_mix(services, count=40, seed=9):
        replies = []
        for port in (nsd_port, mcobs_port):
            query = dns.message.make_query(name, rdtype, use_edns=0)
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
            replies.append(
                (
                    reply.rcode(),
                    sorted(r.to_text() for r in reply.answer),
                    sorted(r.to_text() for r in reply.authority),
                )
            )
        if replies[0] != replies[1]:
            raise AssertionError(f"{name} {rdtype}: NSD {replies[0]} != mcobs {replies[1]}")
        checked += 1
    return checked


def cache_after_change(services: int) -> dict[str, float]:
    """Answer every question, change one service, answer them again: what is re-rendered."""
    questions = [(service_name(i), t) for i in range(services) for t in ("A", "AAAA")]
    questions += [("_http._tcp." + service_name(i), "SRV") for i in range(services)]
    negative = [(f"nx{i}.default.{ZONE}", "A") for i in range(100)]
    packets = [wire(name, rdtype) for name, rdtype in questions + negative]
    responder = Responder()
    before = bench_view(services, serial=1)
    for packet in packets:
        responder.respond(before, packet, udp=True)
    warm = responder.stats.cache_misses
    after = bench_view(services, serial=2, changed=7)
    started = time.perf_counter()
    for packet in packets:
        responder.respond(after, packet, udp=True)
    changed_seconds = time.perf_counter() - started
    cold = Responder()
    started = time.perf_counter()
    for packet in packets:
        cold.respond(after, packet, udp=True)
    cold_seconds = time.perf_counter() - started
    return {
        "questions": len(packets),
        "negative_questions": len(negative),
        "rendered_before": warm,
        "rendered_after_change": responder.stats.cache_misses - warm,
        "ms_after_change": changed_seconds * 1000,
        "ms_cold_cache": cold_seconds * 1000,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    for tool in ("nsd", "dnsperf", "gcc", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y nsd dnsperf gcc)")
    results: dict[str, Any] = {
        "config": {
            "services": args.services,
            "seconds": args.seconds,
            "runs": args.runs,
            "outstanding": args.outstanding,
        }
    }
    with tempfile.TemporaryDirectory(prefix="mcobs-dnsbench-") as tmp:
        bench = Bench(args, Path(tmp))
        with nsd(Path(tmp), args.services) as nsd_port, mcobs(args.services, [SERVER_CPU]) as port:
            results["answers_compared"] = same_answers(nsd_port, port, args.services)
            bench.warm_up(nsd_port, port)
            peak = bench.rounds(
                nsd_loadgen=bench.loadgen(nsd_port),
                mcobs_loadgen=bench.loadgen(port),
                nsd_dnsperf=bench.dnsperf(nsd_port),
                mcobs_dnsperf=bench.dnsperf(port),
                mcobs_ecs_loadgen=bench.loadgen(port, ecs=True),
            )
            rate = round(peak["mcobs_loadgen"]["qps"] * 0.2)
            latency = bench.rounds(
                mcobs_loadgen=bench.loadgen(port, rate=rate),
                nsd_loadgen=bench.loadgen(nsd_port, rate=rate),
                mcobs_dnsperf=bench.dnsperf(port, rate=rate),
            )
        results["peak"] = peak
        results["latency_rate"] = rate
        results["latency"] = latency
        workers = {}
        with mcobs(args.services, [SERVER_CPU, SERVER_CPU]) as port:
            bench.warm_up(port)
            workers.update(bench.rounds(two_workers_cpu0=bench.loadgen(port)))
        with mcobs(args.services, [SERVER_CPU, LOAD_CPU]) as port:
            bench.warm_up(port)
            workers.update(bench.rounds(two_workers_cpu01=bench.loadgen(port)))
        results["workers"] = workers
    results["ratio_loadgen"] = peak["mcobs_loadgen"]["qps"] / peak["nsd_loadgen"]["qps"]
    results["ratio_dnsperf"] = peak["mcobs_dnsperf"]["qps"] / peak["nsd_dnsperf"]["qps"]
    results["cache_after_change"] = cache_after_change(args.services)
    return results


def table(results: dict[str, Any]) -> str:
    def row(label: str, tool: str, run: dict[str, float]) -> str:
        loss = run.get("lost", 0) / max(run.get("sent", 1), 1) * 100
        return f"| {label:36} | {tool:7} | {run['qps']:>10,.0f} | {loss:5.2f}% |"

    peak, workers, latency = results["peak"], results["workers"], results["latency"]
    lines = [
        "| server (on CPU 0; load on CPU 1)     | load    |  answers/s |  loss  |",
        "|--------------------------------------|---------|------------|--------|",
        row("NSD 4.6 (server-count 1)", "loadgen", peak["nsd_loadgen"]),
        row("NSD 4.6 (server-count 1)", "dnsperf", peak["nsd_dnsperf"]),
        row("mcobs, 1 worker", "loadgen", peak["mcobs_loadgen"]),
        row("mcobs, 1 worker", "dnsperf", peak["mcobs_dnsperf"]),
        row("mcobs, 1 worker, every query has ECS", "loadgen", peak["mcobs_ecs_loadgen"]),
        row("mcobs, 2 workers, both on CPU 0", "loadgen", workers["two_workers_cpu0"]),
        row("mcobs, 2 workers, CPU 0 and 1 (*)", "loadgen", workers["two_workers_cpu01"]),
        "",
        f"mcobs / NSD: {results['ratio_loadgen']:.2f} (loadgen), "
        f"{results['ratio_dnsperf']:.2f} (dnsperf); goal >= 0.5",
        "(*) the second worker shares CPU 1 with the load generator (a 2-CPU machine).",
        "",
        f"Latency at {results['latency_rate']:,} q/s (20% of mcobs' loadgen peak):",
    ]
    for label, run in (
        ("mcobs, loadgen", latency["mcobs_loadgen"]),
        ("NSD,   loadgen", latency["nsd_loadgen"]),
    ):
        loss = run["lost"] / max(run["sent"], 1) * 100
        lines.append(
            f"  {label}: mean {run['latency_mean_us']:.0f} us, p50 {run['latency_p50_us']:.0f} us,"
            f" p99 {run['latency_p99_us']:.0f} us, max {run['latency_max_us']:.0f} us,"
            f" lost {run['lost']:.0f} of {run['sent']:.0f} ({loss:.2f}%)"
        )
    perf = latency["mcobs_dnsperf"]
    lines.append(
        f"  mcobs, dnsperf: mean {perf['latency_mean_us']:.0f} us,"
        f" lost {perf['lost']:.0f} of {perf['sent']:.0f}"
    )
    cache = results["cache_after_change"]
    lines += [
        "",
        f"Catalog change (1 of {results['config']['services']} services):"
        f" {cache['rendered_after_change']:.0f} of {cache['questions']:.0f} cached answers"
        f" re-rendered ({cache['negative_questions']:.0f} of them negative answers, which"
        f" carry the new SOA serial); answering all again took {cache['ms_after_change']:.0f} ms"
        f" against {cache['ms_cold_cache']:.0f} ms with a cold cache.",
        f"Answers compared with NSD: {results['answers_compared']} questions, identical.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("artifacts/dns_throughput.json"))
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--outstanding", type=int, default=200)
    args = parser.parse_args(argv)
    results = measure(args)
    text = table(results)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
