"""One simulated cluster served on a given address, e.g. inside a network namespace.

    ip netns exec NS python -m tests.faults.netns_sim --host 10.200.7.2 --index 3 \\
        --kubeconfig FILE

`python -m mcobs.sim` binds 127.0.0.1 only, and `SimCluster.kube_url` names 127.0.0.1,
so this builds the cluster as `SimFleet.default` does but serves it on `--host`, with a
certificate for that address, and writes a kubeconfig pointing there. The control API
(`/api/v1/sim/...`) is served on `--host` too. It prints one JSON line (`name`,
`region`, `kubeconfig`, `prometheus_url`, `address` of `default/web`, `control`) and
runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml
from aiohttp import web

from mcobs.sim import defaults
from mcobs.sim.cluster import SimCluster
from mcobs.sim.control import add_sim_routes
from mcobs.sim.fleet import SimFleet
from mcobs.sim.kubeconfig import kubeconfig
from mcobs.sim.tlscert import self_signed


async def run(host: str, index: int, path: Path, control_port: int) -> None:
    cluster = SimCluster(
        defaults.cluster_name(index),
        defaults.region(index),
        index,
        token=secrets.token_urlsafe(32),
        clock=time.time,
    )
    defaults.populate(cluster)
    cluster.tls = self_signed(common_name=f"mcobs-sim {cluster.name}", ips=(host,), dns_names=())
    fleet = SimFleet([cluster], host=host)
    await fleet.start()
    runner = web.AppRunner(web.Application(), access_log=None)
    try:
        add_sim_routes(runner.app, fleet)
        await runner.setup()
        await web.TCPSite(runner, host, control_port).start()
        document = kubeconfig([cluster])
        document["clusters"][0]["cluster"]["server"] = f"https://{host}:{cluster.kube_port}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(yaml.safe_dump(document, sort_keys=False))
        service = next(s for s in cluster.services() if s.name == "web")
        description = {
            "name": cluster.name,
            "region": cluster.region,
            "kubeconfig": str(path),
            "prometheus_url": f"http://{host}:{cluster.prom_port}",
            "address": service.addresses[0],
            "control": f"http://{host}:{runner.addresses[0][1]}",
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
    parser = argparse.ArgumentParser(prog="python -m tests.faults.netns_sim")
    parser.add_argument("--host", required=True)
    parser.add_argument("--index", type=int, default=3)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(run(args.host, args.index, Path(args.kubeconfig), args.control_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
