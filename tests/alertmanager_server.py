"""A real Alertmanager (Debian `prometheus-alertmanager`) on a free loopback port, for tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tests.processes import Managed, stop_process
from tests.redis_server import free_port

BINARY = "/usr/bin/prometheus-alertmanager"

CONFIG = """
route:
  receiver: mcobs
  group_by: [alertname, cluster, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: mcobs
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""


class Alertmanager(Managed):
    """Sends every alert to `webhook_url` at once (group_wait 0s), with a bearer token."""

    def __init__(self, webhook_url: str, token: str) -> None:
        if not Path(BINARY).exists():
            raise RuntimeError(f"{BINARY} is missing: apt-get install prometheus-alertmanager")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="mcobs-am-"))
        (self._dir / "alertmanager.yml").write_text(CONFIG.format(url=webhook_url, token=token))
        self._process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self, timeout: float = 15.0) -> None:
        self._log = open(self._dir / "log", "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={self._dir / 'alertmanager.yml'}",
                f"--storage.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip: a single instance
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"alertmanager did not start: {(self._dir / 'log').read_text()[-2000:]}")

    def fire(self, labels: dict[str, str], summary: str = "", resolved: bool = False) -> None:
        """Post one alert to Alertmanager's v2 API, as Prometheus would."""

        def stamp(offset: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))

        alert = {
            "labels": labels,
            "annotations": {"summary": summary},
            "startsAt": stamp(-60),
            "endsAt": stamp(-1 if resolved else 3600),
        }
        body = [alert]
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, 10)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._dir, ignore_errors=True)
