"""A DNS worker process for the tests: `python -m tests.dnsserver.worker_main PORT SERIAL`.

Serves `sample_view(serial)` on 127.0.0.1:PORT with SO_REUSEPORT and prints
"<port> <event loop class>" once it listens; exits on SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys

from mcobs.dnsserver import DnsServer
from mcobs.dnsserver.worker import run_dns_worker, serve_dns
from tests.dnsserver.support import sample_view


def main() -> None:
    port, serial = int(sys.argv[1]), int(sys.argv[2])
    view = sample_view(serial=serial)

    def ready(server: DnsServer) -> None:
        loop = type(asyncio.get_running_loop())
        print(server.port, f"{loop.__module__}.{loop.__name__}", flush=True)

    async def serve(stop: asyncio.Event) -> None:
        await serve_dns(lambda: view, "127.0.0.1", port, stop=stop, ready=ready)

    run_dns_worker(serve)


if __name__ == "__main__":
    main()
