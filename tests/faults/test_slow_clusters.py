"""Clusters whose API or Prometheus hangs or answers slowly, under `mcobs serve`.

What a user notices: request timeouts bound the damage to the cluster at fault, and the
other clusters are unaffected: an outage elsewhere still leaves DNS within seconds and
comes back as quickly, DNS and the HTTP API answer at once, and a cluster whose
Prometheus does not answer stays in DNS (its signal is reported unavailable) instead of
turning stale.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mcobs.sim.fleet import SimFleet
from tests.faults.harness import (
    ClusterEntry,
    DelayProxy,
    ServeProcess,
    SlowServer,
    answers,
    eventually,
    fleet_entries,
    free_udp_port,
    get_json,
    logging_dns,
    repoint_kubeconfig,
    serve_config,
    stopping,
    web_address,
)
from tests.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STALE_AFTER = 6.0
"""Short, so that a sweep blocked by a hanging server would show as a stale cluster."""


async def test_hanging_and_slow_clusters_do_not_hold_up_the_others(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    blackhole = SlowServer("hang")
    await blackhole.start()
    async with SimFleet.default(clusters=4) as fleet:
        kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
        slow_api = DelayProxy(fleet.cluster("sim-04").kube_port or 0, delay=0.4)
        await slow_api.start()
        try:
            slow_kubeconfig = repoint_kubeconfig(
                kubeconfig,
                tmp_path / "kubeconfig-slow",
                "sim-04",
                f"https://127.0.0.1:{slow_api.port}",
            )
            entries = []
            for entry in fleet_entries(fleet, kubeconfig):
                if entry.name == "us-east":  # its Prometheus accepts and never answers
                    entry = ClusterEntry(entry.name, entry.region, kubeconfig, blackhole.url)
                if entry.name == "sim-04":  # its API answers every chunk 0.4 s late
                    entry = ClusterEntry(
                        entry.name, entry.region, slow_kubeconfig, entry.prometheus_url
                    )
                entries.append(entry)
            serve = ServeProcess(
                serve_config(
                    entries,
                    redis_url=redis_server.url,
                    prefix="faults-slow",
                    dns_port=free_udp_port(),
                    http_port=free_port(),
                    collect={
                        "timeout": 2,
                        "stale_after": STALE_AFTER,
                        "slow_api_seconds": 0.3,
                    },
                ),
                tmp_path,
            )
            await serve.start()
            async with stopping(serve):
                await _scenario(fleet, serve)
        finally:
            await slow_api.stop()
            await blackhole.stop()


async def _scenario(fleet: SimFleet, serve: ServeProcess) -> None:
    port = serve.dns_port
    eu, us, ap, s4 = (web_address(fleet, c) for c in ("eu-west", "us-east", "ap-south", "sim-04"))
    everyone = frozenset({eu, us, ap, s4})

    async def dns_is(expected: frozenset[str]) -> bool:
        return await answers(port) == expected

    await eventually(lambda: dns_is(everyone), 40, "every cluster answered")
    async with logging_dns(port) as dns_log:
        # eu-west hangs: its API and Prometheus accept connections and never answer.
        await fleet.outage("eu-west", mode="hang")
        hang_out = await eventually(lambda: dns_is(everyone - {eu}), 12, "hanging eu-west left")

        # Meanwhile another cluster's outage and recovery show as quickly as ever.
        await fleet.outage("ap-south")
        ap_out = await eventually(
            lambda: dns_is(frozenset({us, s4})), 6, "ap-south left while eu-west hangs"
        )
        api_started = time.monotonic()
        services = await get_json(serve.http_port, "/api/v1/services", within=2)
        api_took = time.monotonic() - api_started
        await fleet.recover("ap-south")
        ap_back = await eventually(lambda: dns_is(frozenset({us, ap, s4})), 8, "ap-south came back")

        # Longer than stale_after: every sweep of us-east and sim-04 kept finishing.
        await asyncio.sleep(STALE_AFTER + 2)
        assert await answers(port) == {us, ap, s4}

    print(
        f"hanging eu-west out after {hang_out:.2f}s; ap-south out {ap_out:.2f}s, "
        f"back {ap_back:.2f}s; /api/v1/services {api_took * 1000:.0f} ms"
    )
    assert api_took < 1.0 and services["services"]
    latencies = [took for _, _, took in dns_log.seen]
    assert max(latencies) < 0.5, f"slowest DNS reply {max(latencies):.3f}s"
    assert all(isinstance(v, frozenset) and {us, s4} <= v for _, v, _ in dns_log.seen), [
        v for _, v, _ in dns_log.seen if not (isinstance(v, frozenset) and {us, s4} <= v)
    ]

    clusters = {
        c["name"]: c for c in (await get_json(serve.http_port, "/api/v1/clusters"))["clusters"]
    }
    eu_west = clusters["eu-west"]
    assert eu_west["health"]["state"] == "down"
    assert "timed out" in (eu_west["api"]["error"] or ""), eu_west["api"]
    us_east = clusters["us-east"]  # Prometheus down: a missing signal, not a down cluster
    assert us_east["health"]["state"] == "healthy", us_east["health"]
    assert us_east["signals"][0]["value"] is None and us_east["signals"][0]["error"] == "timed out"
    assert us_east["age_seconds"] < STALE_AFTER - 1, us_east  # never near stale
    sim_04 = clusters["sim-04"]  # slow API: still answered, with its latency shown
    assert sim_04["api"]["reachable"] and sim_04["api"]["latency_seconds"] > 0.3, sim_04["api"]
    assert sim_04["health"]["state"] in ("healthy", "degraded"), sim_04["health"]
    assert sim_04["age_seconds"] < STALE_AFTER - 1, sim_04
