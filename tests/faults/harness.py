"""Real processes and servers for the fault tests and the soak run.

* `PersistentRedis`: a redis-server with an append-only file (`appendfsync always`) in a
  directory of the test's own, killed with SIGKILL and started again on the same port and
  files, as a production deployment that keeps its data would be (or without
  persistence, to come back empty);
* `ServeProcess`: `mcobs serve --config FILE` as a subprocess (log to a file, never a pipe
  that could fill up), stopped with SIGTERM or killed with SIGKILL; `serve_config` writes
  a configuration with fast sweeps;
* `WebhookConsumer`: a small aiohttp receiver that verifies Standard Webhooks signatures
  and counts every attempt per `webhook-id`; it can be told to refuse (503) for a while;
* `SlowServer` (accepts and never answers, or trickles its answer) and `DelayProxy`
  (answers, late): misbehaving Prometheus and API servers;
* DNS (`ask`, `answers`, `DnsLog`) and HTTP helpers, every wait bounded (`eventually`).

Everything binds 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import yaml
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from mcobs.sim.fleet import SimFleet
from tests.processes import Managed, stop_process
from tests.redis_server import REDIS_SERVER, free_port

ROOT = Path(__file__).resolve().parents[2]
ZONE = "global.example.com"
WEB = f"web.default.{ZONE}."


def free_udp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (DNS listens on both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP+TCP port")


async def eventually(
    check: Callable[[], Awaitable[bool]], limit: float, what: str = "condition"
) -> float:
    """Seconds until `check` holds (polled every 50 ms); fails after `limit` seconds."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            raise AssertionError(f"{what}: not met within {limit:g}s")
        await asyncio.sleep(0.05)


# --- DNS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    rcode: str
    """NOERROR, NXDOMAIN, ... or TIMEOUT when no reply came."""
    records: frozenset[str]


async def ask(port: int, name: str = WEB, rdtype: str = "A", within: float = 1.0) -> Answer:
    """One UDP query; TIMEOUT when no reply comes `within` seconds."""
    query = dns.message.make_query(name, rdtype)
    try:
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=within)
    except (dns.exception.Timeout, OSError):
        return Answer("TIMEOUT", frozenset())
    records = frozenset(rr.to_text() for rrset in reply.answer for rr in rrset)
    return Answer(dns.rcode.to_text(reply.rcode()), records)


async def answers(port: int, name: str = WEB) -> frozenset[str]:
    return (await ask(port, name)).records


@dataclass
class DnsLog:
    """`web` A asked every 100 ms: (seconds into the test, answer set or rcode, latency)."""

    port: int
    seen: list[tuple[float, frozenset[str] | str, float]] = field(default_factory=list)

    async def run(self) -> None:
        start = time.monotonic()
        while True:
            asked = time.monotonic()
            answer = await ask(self.port, within=1.0)
            took = time.monotonic() - asked
            value = answer.records if answer.rcode == "NOERROR" else answer.rcode
            self.seen.append((asked - start, value, took))
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def logging_dns(port: int) -> AsyncIterator[DnsLog]:
    log = DnsLog(port)
    task = asyncio.create_task(log.run())
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- HTTP ---------------------------------------------------------------------------------


async def get_json(port: int, path: str, within: float = 5.0) -> Any:
    client_timeout = aiohttp.ClientTimeout(total=within)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        response.raise_for_status()
        return await response.json()


async def all_events(port: int) -> list[dict[str, Any]]:
    """Every event of the decision log (`/api/v1/events`, all pages), oldest first."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        path = "/api/v1/events?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = await get_json(port, path)
        found += page["events"]
        cursor = page["next_cursor"]
        if not cursor:
            return found[::-1]
    raise AssertionError("more than 100 pages of events")


# --- redis-server with persistence ----------------------------------------------------------


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class PersistentRedis(Managed):
    """redis-server with AOF (`appendfsync always`) in `directory`; `kill()` then `start()`
    again brings back every write it acknowledged."""

    def __init__(self, directory: Path, *, persist: bool = True, port: int | None = None) -> None:
        self.directory = directory
        self.persist = persist
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 10.0) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persist
            else ["--appendonly", "no"]
        )
        self._process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                *persistence,
                "--daemonize", "no",
                "--protected-mode", "yes",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"redis-server on port {self.port} exited at start")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything it had not written already."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(10)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, 10)


# --- mcobs serve ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterEntry:
    """One `clusters:` entry of the serve configuration."""

    name: str
    region: str
    kubeconfig: Path
    prometheus_url: str
    context: str = ""

    def settings(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "region": self.region,
            "kubeconfig": str(self.kubeconfig),
            "context": self.context or self.name,
            "prometheus_url": self.prometheus_url,
        }


def fleet_entries(fleet: SimFleet, kubeconfig: Path) -> list[ClusterEntry]:
    """A `clusters:` entry per cluster of an in-process simulated fleet."""
    return [ClusterEntry(c.name, c.region, kubeconfig, c.prometheus_url) for c in fleet.clusters]


def web_address(fleet: SimFleet, cluster: str) -> str:
    """The load-balancer address of `default/web` in `cluster`."""
    service = next(s for s in fleet.cluster(cluster).services() if s.name == "web")
    return service.addresses[0]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def serve_config(
    clusters: Iterable[ClusterEntry],
    *,
    redis_url: str,
    prefix: str,
    dns_port: int,
    http_port: int,
    webhook: tuple[str, str] | None = None,
    collect: Mapping[str, Any] | None = None,
    decide: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A configuration for fast tests: 1 s sweeps, 2 s timeouts, no flap damping.

    `webhook`: (url, secret) of one consumer subscribed to every event, retried quickly.
    """
    config: dict[str, Any] = {
        "zone": ZONE,
        "dns": {"host": "127.0.0.1", "port": dns_port},
        "http": {"host": "127.0.0.1", "port": http_port},
        "redis": {"url": redis_url, "prefix": prefix},
        "collect": {
            "interval": 1,
            "timeout": 2,
            "down_after_failures": 2,
            "up_after_successes": 2,
            "min_down_seconds": 0,
            "flap_limit": 100,
            "stale_after": 30,
            **(collect or {}),
        },
        "decide": {"lease_ttl": 3, **(decide or {})},
        "clusters": [c.settings() for c in clusters],
    }
    if webhook is not None:
        url, secret = webhook
        config["webhook_defaults"] = {"timeout": 2, "backoff_base": 0.2, "backoff_cap": 1}
        config["webhooks"] = [{"name": "t", "url": url, "secret": secret, "events": ["*"]}]
    return config


class ServeProcess:
    """`mcobs serve --config FILE` in a subprocess; its log goes to `log_path`.

    `launcher`: the interpreter arguments before `serve` (default `-m mcobs`).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        workdir: Path,
        name: str = "serve",
        launcher: Sequence[str] = ("-m", "mcobs"),
    ) -> None:
        self.config = dict(config)
        self.launcher = tuple(launcher)
        self.workdir = workdir
        self.name = name
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self._starts = 0

    @property
    def dns_port(self) -> int:
        port: int = self.config["dns"]["port"]
        return port

    @property
    def http_port(self) -> int:
        port: int = self.config["http"]["port"]
        return port

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        assert self.process is None or self.process.returncode is not None
        self.config_path.write_text(yaml.safe_dump(self.config))
        self._starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self._starts}\n".encode())
            log.flush()
            self.started_at = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.launcher,
                "serve",
                "--config",
                str(self.config_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=ROOT,
            )

    async def kill(self) -> None:
        """SIGKILL, as an OOM killer or a node failure would."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)

    async def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM (graceful), SIGKILL after `grace` seconds; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                process.kill()
                await asyncio.wait_for(process.wait(), 10)
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_ready(self, limit: float = 30.0) -> None:
        async def ready() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"mcobs serve exited {self.process.returncode}:\n{self.log()}")
            try:
                await get_json(self.http_port, "/healthz", within=1)
            except (aiohttp.ClientError, TimeoutError):
                return False
            return True

        await eventually(ready, limit, "mcobs serve answers /healthz")


# --- webhook consumer -----------------------------------------------------------------------


@dataclass
class WebhookConsumer:
    """Receives webhooks on 127.0.0.1; `accepting = False` answers 503 (a consumer outage)."""

    secret: str = field(default_factory=new_secret)
    accepting: bool = True
    attempts: Counter[str] = field(default_factory=Counter)
    """Every attempt per webhook-id, whatever was answered."""
    delivered: Counter[str] = field(default_factory=Counter)
    """Attempts answered 2xx, per webhook-id (more than 1: a repeat to de-duplicate)."""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The first verified body per webhook-id, in arrival order."""
    bad_signatures: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=401)
        webhook_id = request.headers["webhook-id"]
        self.attempts[webhook_id] += 1
        if not self.accepting:
            return web.Response(status=503)
        self.delivered[webhook_id] += 1
        self.events.setdefault(webhook_id, payload)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def state_changes(self, cluster: str) -> list[tuple[str, str]]:
        """(from, to) of the `cluster.state_changed` events received for `cluster`, in order."""
        return [
            (e["data"]["from"], e["data"]["to"])
            for _, e in sorted(self.events.items())  # ids are ULIDs: they sort by time
            if e["type"] == "cluster.state_changed" and e["data"]["cluster"] == cluster
        ]


def describe_events(events: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps([(e["id"], e["type"], e["data"].get("cluster")) for e in events])


@contextlib.asynccontextmanager
async def stopping(serve: ServeProcess) -> Any:
    """Stop (SIGTERM, then SIGKILL) `serve` whatever happens in the block."""
    try:
        yield serve
    finally:
        await serve.stop()


# --- misbehaving servers --------------------------------------------------------------------


class SlowServer:
    """A TCP server on 127.0.0.1 that misbehaves on purpose.

    `hang`: accepts, reads whatever comes and never answers.
    `drip`: answers an HTTP request with a status line and headers at once, then a body
    one byte every `gap` seconds: every socket read succeeds within any read timeout,
    yet the response never completes (a Prometheus stuck behind a slow proxy).
    """

    def __init__(self, mode: str, gap: float = 0.3) -> None:
        assert mode in ("hang", "drip")
        self.mode = mode
        self.gap = gap
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if self.mode == "hang":
                while await reader.read(65536):
                    pass
                return
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000\r\n\r\n"
            )
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(self.gap)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None


class DelayProxy:
    """Forwards TCP to 127.0.0.1:`target`, holding every chunk from the server for `delay`
    seconds (order kept): an API server that answers, slowly. TLS passes through."""

    def __init__(self, target: int, delay: float) -> None:
        self.target = target
        self.delay = delay
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, 0)),
            asyncio.create_task(self._pipe(up_reader, writer, self.delay)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None


def repoint_kubeconfig(source: Path, target: Path, cluster: str, server: str) -> Path:
    """A copy of the kubeconfig `source` where `cluster`'s server URL is `server`."""
    document = yaml.safe_load(source.read_text())
    for entry in document["clusters"]:
        if entry["name"] == cluster:
            entry["cluster"]["server"] = server
    target.write_text(yaml.safe_dump(document))
    target.chmod(0o600)
    return target
