"""Simulated clusters as a process of their own, for hubs running elsewhere.

    python -m mcobs.sim --clusters 3 --kubeconfig FILE --control-port P [--churn-rate R]

Starts `SimFleet.default(clusters)`, writes its kubeconfig (contexts = cluster
names), serves the control API (`/api/v1/sim/...`, see README.md) on
127.0.0.1:P, prints one JSON line describing the fleet, then runs until
SIGTERM or SIGINT:

    {"control": "http://127.0.0.1:P", "kubeconfig": "FILE",
     "clusters": [{"name": "eu-west", "region": "europe-west", "context": "eu-west",
                   "prometheus_url": "http://127.0.0.1:..."}, ...]}

Several `mcobs serve` replicas can then watch the same clusters while a test
(or a person) takes clusters down through the control API.

`--churn-rate R` (R > 0) also runs a seeded `mcobs.sim.churn.Churn`: R changes a
second, endpoint counts and short outages, listed at `GET /api/v1/sim/churn`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from mcobs.sim import churn
from mcobs.sim.control import add_sim_routes
from mcobs.sim.fleet import SimFleet


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _share(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mcobs.sim", description="Run simulated member clusters."
    )
    parser.add_argument("--clusters", type=int, default=3, choices=range(1, 5001), metavar="N")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--control-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--extra-services", type=int, default=0, metavar="N")
    parser.add_argument(
        "--churn-rate",
        type=_non_negative,
        default=0.0,
        metavar="R",
        help="random endpoint and cluster changes per second (default 0: none)",
    )
    parser.add_argument("--churn-seed", type=int, default=0, metavar="S", help="default 0")
    parser.add_argument(
        "--churn-outage",
        type=_positive,
        default=churn.OUTAGE,
        metavar="SECONDS",
        help=f"how long a churned cluster refuses connections (default {churn.OUTAGE:g})",
    )
    parser.add_argument(
        "--churn-cluster-share",
        type=_share,
        default=churn.CLUSTER_SHARE,
        metavar="F",
        help="share of changes that are cluster outages, at most 1%% of the fleet down at once"
        f" (default {churn.CLUSTER_SHARE:g})",
    )
    return parser


def make_churn(fleet: SimFleet, args: argparse.Namespace) -> churn.Churn | None:
    """The churn the arguments ask for; None when `--churn-rate` is 0."""
    if args.churn_rate == 0:
        return None
    return churn.Churn(
        fleet,
        random.Random(args.churn_seed),
        rate=args.churn_rate,
        cluster_share=args.churn_cluster_share,
        outage=args.churn_outage,
        seed=args.churn_seed,
    )


def describe(fleet: SimFleet, control_port: int, kubeconfig: Path) -> dict[str, Any]:
    return {
        "control": f"http://127.0.0.1:{control_port}",
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


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run(args: argparse.Namespace) -> None:
    fleet = SimFleet.default(clusters=args.clusters, extra_services=args.extra_services)
    churner = make_churn(fleet, args)
    await fleet.start()
    runner = web.AppRunner(web.Application(), access_log=None)
    churning: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    try:
        add_sim_routes(runner.app, fleet, churner)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
        kubeconfig = fleet.write_kubeconfig(Path(args.kubeconfig))
        print(json.dumps(describe(fleet, runner.addresses[0][1], kubeconfig)), flush=True)
        if churner is not None:
            churning = asyncio.create_task(churner.run())
            churning.add_done_callback(lambda _: stop.set())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        try:
            await _cancel(churning)
        finally:
            await runner.cleanup()
            await fleet.stop()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(run(build_parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
