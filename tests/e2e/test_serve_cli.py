"""`mcobs serve --config FILE` against simulated clusters and a real redis-server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import yaml

from mcobs.cli import main
from mcobs.sim.fleet import SimFleet
from tests.e2e.test_demo_cli import NAME, dig
from tests.redis_server import RedisServer, free_port

EXAMPLE = Path(__file__).parents[2] / "deploy" / "mcobs.example.yaml"


async def start_serve(
    fleet: SimFleet, workdir: Path, redis_url: str, prefix: str, dns_port: int, workers: int = 1
) -> asyncio.subprocess.Process:
    """`mcobs serve` over the simulated fleet, with its log on stderr (a pipe)."""
    kubeconfig = fleet.write_kubeconfig(workdir / "kubeconfig")
    config = {
        "zone": "global.example.com",
        "dns": {"host": "127.0.0.1", "port": dns_port, "workers": workers},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "redis": {"url": redis_url, "prefix": prefix},
        "clusters": [
            {
                "name": c.name,
                "region": c.region,
                "kubeconfig": str(kubeconfig),
                "context": c.name,
                "prometheus_url": c.prometheus_url,
            }
            for c in fleet.clusters
        ],
    }
    path = workdir / "mcobs.yaml"
    path.write_text(yaml.safe_dump(config))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mcobs",
        "serve",
        "--config",
        str(path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_the_example_config_is_valid() -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0


async def test_serve_answers_from_real_clusters_through_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with SimFleet.default(clusters=3) as fleet:
        dns_port = free_port()
        process = await start_serve(fleet, tmp_path, redis_server.url, "serve-test", dns_port)
        try:
            for _ in range(200):
                answer = await asyncio.to_thread(dig, dns_port, NAME, "A")
                if len(answer.split()) == 3:
                    break
                await asyncio.sleep(0.1)
            assert sorted(answer.split()) == ["192.0.2.1", "198.51.100.1", "203.0.113.1"]
        finally:
            process.terminate()
            _, stderr = await asyncio.wait_for(process.communicate(), 10)
        log = stderr.decode()
        assert process.returncode == 0 and "stopping" in log  # SIGTERM stops gracefully
        for cluster in fleet.clusters:
            assert cluster.token not in log


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("zone: x\nclusters: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "mcobs", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "clusters: list at least one cluster" in result.stderr


async def test_serve_with_two_dns_workers_follows_changes_in_both(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    import dns.asyncquery
    import dns.exception
    import dns.message

    async def answers_from_many_sockets(port: int) -> list[frozenset[str]]:
        """One query from each of 24 client sockets: SO_REUSEPORT spreads them over workers.

        A query that times out is sent again once, as a resolver would: on a busy
        2-core machine one lost datagram says nothing about the answers."""
        seen = []
        for _ in range(24):
            query = dns.message.make_query(NAME + ".", "A")
            for attempt in range(2):
                try:
                    response = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=1)
                except (dns.exception.Timeout, OSError):
                    if attempt:
                        seen.append(frozenset())
                    continue
                seen.append(frozenset(rr.to_text() for rrset in response.answer for rr in rrset))
                break
        return seen

    async with SimFleet.default(clusters=3) as fleet:
        dns_port = free_port()
        process = await start_serve(
            fleet, tmp_path, redis_server.url, "serve-workers", dns_port, workers=2
        )
        everyone = frozenset({"192.0.2.1", "198.51.100.1", "203.0.113.1"})
        try:
            for _ in range(300):
                if set(await answers_from_many_sockets(dns_port)) == {everyone}:
                    break
                await asyncio.sleep(0.1)
            assert set(await answers_from_many_sockets(dns_port)) == {everyone}
            await fleet.outage("us-east")
            after = everyone - {"198.51.100.1"}
            for _ in range(100):
                if set(await answers_from_many_sockets(dns_port)) == {after}:
                    break
                await asyncio.sleep(0.1)
            seen = await answers_from_many_sockets(dns_port)
            assert set(seen) == {after}, seen
        finally:
            process.terminate()
            _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert "1 more DNS worker processes" in stderr.decode()
