"""Throwaway Prometheus servers on free local ports, scraping simulated clusters.

    with PrometheusFleet(clusters=3) as fleet:   # sim clusters + one Prometheus each
        fleet.prometheus_urls()                  # {"eu-west": "http://127.0.0.1:PORT", ...}
        fleet.sim_urls()                         # the simulators' own Prometheus APIs
        fleet.call(lambda sim: sim.set_series("eu-west", "x", {}, 1))

    with PrometheusServer(["127.0.0.1:9100"]) as server:   # any scrape targets
        server.url

Each Prometheus (Debian package `prometheus`, `/usr/bin/prometheus`) gets a
generated config (JSON, which is YAML), its TSDB in a temporary directory
removed at `stop`, and listens on 127.0.0.1 only. `start` returns once it is
ready and has scraped every target once.

The simulated fleet runs in its own event loop on a background thread, so it
keeps answering scrapes between tests and while a test's own loop is busy.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from mcobs.sim import SimFleet
from tests.processes import Managed, stop_process
from tests.redis_server import free_port

PROMETHEUS = "/usr/bin/prometheus"
JOB = "sim"
T = TypeVar("T")


def _get_json(url: str, timeout: float = 1.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class PrometheusServer(Managed):
    """One prometheus process scraping `targets` (`host:port`) every `scrape_interval`."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        labels: Mapping[str, str] | None = None,
        scrape_interval: str = "1s",
        honor_labels: bool = True,
        port: int | None = None,
        binary: str = PROMETHEUS,
    ) -> None:
        self.targets = tuple(targets)
        self.labels = dict(labels or {})
        self.scrape_interval = scrape_interval
        self.honor_labels = honor_labels
        self.port = port if port is not None else free_port()
        self.binary = shutil.which(binary) or binary
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": "1m",
            },
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "honor_labels": self.honor_labels,
                    "static_configs": [{"targets": list(self.targets), "labels": self.labels}],
                }
            ],
        }

    def launch(self) -> None:
        """Start the process without waiting (see `wait_ready`)."""
        if self.running:
            return
        if not Path(self.binary).is_file():
            raise RuntimeError(
                f"{self.binary} not found: install Debian's prometheus package "
                "(apt-get install prometheus; `make system-deps` does)"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="mcobs-prometheus-"))
        config = self._dir / "prometheus.yml"
        config.write_text(json.dumps(self.config(), indent=2))
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=error",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=0.5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def scraped(self) -> bool:
        """Whether every target has been scraped successfully at least once."""
        query = urllib.parse.urlencode({"query": f'up{{job="{JOB}"}} == 1'})
        try:
            body = _get_json(f"{self.url}/api/v1/query?{query}")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return len(body.get("data", {}).get("result", [])) == len(self.targets)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until it answers `/-/ready` and has scraped every target."""
        deadline = time.monotonic() + timeout
        while not (self._ready() and self.scraped()):
            if self._process is None or self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"prometheus on port {self.port} exited at start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus on port {self.port} not ready in {timeout}s")
            time.sleep(0.05)

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class SimFleetThread:
    """A `SimFleet` served by an event loop of its own, on a daemon thread."""

    def __init__(self, fleet: SimFleet) -> None:
        self.fleet = fleet
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def run(self, coro: Awaitable[T], timeout: float = 10.0) -> T:
        """Await `coro` on the fleet's loop; returns its result."""

        async def wrapped() -> T:
            return await coro

        future: Future[T] = asyncio.run_coroutine_threadsafe(wrapped(), self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[[SimFleet], T]) -> T:
        """Call `fn(fleet)` on the fleet's loop (state changes, outages via `run`)."""

        async def wrapped() -> T:
            return fn(self.fleet)

        return self.run(wrapped())

    def __enter__(self) -> SimFleetThread:
        self._thread.start()
        self.run(self.fleet.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.fleet.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


class PrometheusFleet:
    """Simulated clusters (`SimFleet.default`) and one real Prometheus scraping each."""

    def __init__(
        self,
        clusters: int = 3,
        *,
        labels: Mapping[str, Mapping[str, str]] | None = None,
        scrape_interval: str = "1s",
    ) -> None:
        """`labels`: extra target labels per cluster name (e.g. a `cluster` label)."""
        self.sim = SimFleetThread(SimFleet.default(clusters=clusters, tls=False))
        self._labels = dict(labels or {})
        self._interval = scrape_interval
        self.servers: dict[str, PrometheusServer] = {}

    def call(self, fn: Callable[[SimFleet], T]) -> T:
        return self.sim.call(fn)

    def prometheus_urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def sim_urls(self) -> dict[str, str]:
        return self.sim.fleet.prometheus_urls()

    def __enter__(self) -> PrometheusFleet:
        self.sim.__enter__()
        try:
            for cluster in self.sim.fleet.clusters:
                target = f"127.0.0.1:{cluster.prom_port}"
                self.servers[cluster.name] = PrometheusServer(
                    [target],
                    labels=self._labels.get(cluster.name),
                    scrape_interval=self._interval,
                )
            for server in self.servers.values():
                server.launch()
            for server in self.servers.values():
                server.wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers.values():
            server.stop()
        self.sim.__exit__()
