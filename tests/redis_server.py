"""A throwaway redis-server on a free local port, for tests in any folder.

    with RedisServer() as server:
        client = Redis.from_url(server.url)
        ...
        server.stop()   # simulate an outage
        server.start()  # same port again, empty (no persistence)

Never touches the system Redis on 6379: no persistence, bound to 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

from tests.processes import Managed, stop_process

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(Managed):
    """One redis-server process; `start()` again after `stop()` reuses the port."""

    def __init__(self, port: int | None = None, *, binary: str = REDIS_SERVER) -> None:
        self.port = port if port is not None else free_port()
        self.binary = shutil.which(binary) or binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 5.0) -> None:
        if self.running:
            return
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
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
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_process(process, timeout)
