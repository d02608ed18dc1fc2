"""Simulated clusters as a process of their own, for hubs running elsewhere.

    python -m mcobs.sim --clusters 3 --kubeconfig FILE --control-port P

Starts `SimFleet.default(clusters)`, writes its kubeconfig (contexts = cluster
names), serves the control API (`/api/v1/sim/...`, see README.md) on
127.0.0.1:P, prints one JSON line describing the fleet, then runs until
SIGTERM or SIGINT:

    {"control": "http://127.0.0.1:P", "kubeconfig": "FILE",
     "clusters": [{"name": "eu-west", "region": "europe-west", "context": "eu-west",
                   "prometheus_url": "http://127.0.0.1:..."}, ...]}

Several `mcobs serve` replicas can then watch the same clusters while a test
(or a person) takes clusters down through the control API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from mcobs.sim.control import add_sim_routes
from mcobs.sim.fleet import SimFleet


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mcobs.sim", description="Run simulated member clusters."
    )
    parser.add_argument("--clusters", type=int, default=3, choices=range(1, 5001), metavar="N")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--control-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--extra-services", type=int, default=0, metavar="N")
    return parser


async def run(args: argparse.Namespace) -> None:
    fleet = SimFleet.default(clusters=args.clusters, extra_services=args.extra_services)
    await fleet.start()
    runner = web.AppRunner(web.Application(), access_log=None)
    try:
        add_sim_routes(runner.app, fleet)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
        port = runner.addresses[0][1]
        kubeconfig = fleet.write_kubeconfig(Path(args.kubeconfig))
        description = {
            "control": f"http://127.0.0.1:{port}",
            "kubeconfig": str(kubeconfig),
            "clusters": [
                {
                    "name": c.name,
                    "region": c.region,
                    "context": c.name,
                    "prometheus_url": c.prometheus_url,
                }
                for c in fleet.clusters
            ],
        }
        print(json.dumps(description), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        await fleet.stop()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(run(build_parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
