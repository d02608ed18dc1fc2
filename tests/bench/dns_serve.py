"""One mcobs DNS worker serving the benchmark zone (SO_REUSEPORT, uvloop).

`python -m tests.bench.dns_serve PORT [SERVICES]`; prints "ready <port>" once listening,
stops on SIGTERM. Start it several times on one port for several workers.
"""

from __future__ import annotations

import asyncio
import sys

from mcobs.dnsserver import DnsServer
from mcobs.dnsserver.worker import run_dns_worker, serve_dns
from tests.bench.dns_zone import bench_view


def main() -> None:
    port = int(sys.argv[1])
    services = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    view = bench_view(services)

    def ready(server: DnsServer) -> None:
        print("ready", server.port, flush=True)

    async def serve(stop: asyncio.Event) -> None:
        await serve_dns(lambda: view, "127.0.0.1", port, stop=stop, ready=ready)

    run_dns_worker(serve)


if __name__ == "__main__":
    main()
