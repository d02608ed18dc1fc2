"""Prometheus servers that answer, but slowly: headers at once, then a body that trickles
in one byte every 0.3 s. Every socket read finishes well within any read timeout, yet
the response never completes.

What a user should notice: the same as for a Prometheus that does not answer at all
(`test_slow_clusters`): its cluster's signal is unavailable ("timed out") after
`collect.timeout`, and no other cluster is affected.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from mcobs.hub import PROMETHEUS_THREADS
from mcobs.sim.fleet import SimFleet
from tests.faults.harness import (
    ClusterEntry,
    ServeProcess,
    SlowServer,
    answers,
    eventually,
    fleet_entries,
    free_udp_port,
    get_json,
    serve_config,
    stopping,
    web_address,
)
from tests.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STALE_AFTER = 6.0
HEALTHY = ("eu-west", "us-east")


async def test_trickling_prometheus_servers_do_not_stall_the_other_clusters(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    drips = [SlowServer("drip", gap=0.3) for _ in range(PROMETHEUS_THREADS)]
    async with contextlib.AsyncExitStack() as stack:
        for drip in drips:
            await drip.start()
            stack.push_async_callback(drip.stop)
        fleet = await stack.enter_async_context(
            SimFleet.default(clusters=len(HEALTHY) + len(drips))
        )
        kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
        slow = iter(drips)
        entries = [
            e if e.name in HEALTHY else ClusterEntry(e.name, e.region, kubeconfig, next(slow).url)
            for e in fleet_entries(fleet, kubeconfig)
        ]
        serve = ServeProcess(
            serve_config(
                entries,
                redis_url=redis_server.url,
                prefix="faults-drip",
                dns_port=free_udp_port(),
                http_port=free_port(),
                collect={"timeout": 2, "stale_after": STALE_AFTER},
            ),
            tmp_path,
        )
        await serve.start()
        await stack.enter_async_context(stopping(serve))
        await serve.wait_ready()
        await asyncio.sleep(STALE_AFTER + 3)  # long enough for a stalled report to turn stale

        clusters = {
            c["name"]: c for c in (await get_json(serve.http_port, "/api/v1/clusters"))["clusters"]
        }
        summary = {n: (c["health"]["state"], c["age_seconds"]) for n, c in clusters.items()}
        # Every cluster reports: the trickling ones with their signal unavailable ...
        assert set(clusters) == set(fleet.names), summary
        for name, cluster in clusters.items():
            assert cluster["age_seconds"] < STALE_AFTER - 1, summary  # never near stale
            if name not in HEALTHY:
                assert cluster["signals"][0]["error"] == "timed out", cluster["signals"]
        # ... and the others are healthy and still follow their clusters within seconds.
        assert all(clusters[n]["health"]["state"] == "healthy" for n in HEALTHY), summary
        everyone = frozenset(web_address(fleet, c) for c in fleet.names)
        assert await answers(serve.dns_port) <= everyone
        us = web_address(fleet, "us-east")
        await fleet.outage("us-east")

        async def us_east_out() -> bool:
            return us not in await answers(serve.dns_port)

        await eventually(us_east_out, 6, "us-east left DNS")
