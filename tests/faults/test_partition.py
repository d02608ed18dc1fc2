"""A network partition between the hub and one cluster, built from a network namespace.

One simulated cluster (`sim-04`) runs inside a namespace the test creates, reachable from
the hub only over a veth pair with addresses from a private /30 that exists nowhere else;
the other three run on loopback. The partition takes the namespace's end of the link
down: the hub's packets to that cluster vanish without an answer (no RST), so
established connections just hang, and a new connection fails only after about 3 s, when
ARP gives up (EHOSTUNREACH), as behind a dead link. This machine has neither iptables/nft
nor the netem qdisc, so a link without carrier is the drop rule at hand.

What a user notices: the partitioned cluster leaves DNS within seconds, the others keep
answering throughout (and an outage among them still shows), and when the link heals the
cluster comes back, and changes made in it afterwards show too.

Needs root (`ip netns add`); skipped with the reason when that is not permitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from mcobs.sim.fleet import SimFleet
from tests.faults.harness import (
    ROOT,
    ClusterEntry,
    ServeProcess,
    answers,
    eventually,
    fleet_entries,
    free_udp_port,
    logging_dns,
    serve_config,
    stopping,
    web_address,
)
from tests.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.timeout(180)]


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    command = (
        ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


def _netns_unavailable() -> str | None:
    """Why a network namespace cannot be made here, or None when it can."""
    name = f"mcobs-probe-{os.getpid()}"
    try:
        result = subprocess.run(
            ["ip", "netns", "add", name], capture_output=True, text=True, timeout=10, check=False
        )
    except FileNotFoundError:
        return "the ip command (iproute2) is not installed"
    if result.returncode != 0:
        return f"ip netns add is not permitted here: {result.stderr.strip()}"
    _ip("netns", "delete", name, check=False)
    return None


@dataclass(frozen=True)
class Link:
    namespace: str
    host_if: str
    ns_if: str
    host_address: str
    ns_address: str

    def partition(self) -> None:
        _ip("link", "set", self.ns_if, "down", namespace=self.namespace)

    def heal(self) -> None:
        _ip("link", "set", self.ns_if, "up", namespace=self.namespace)


def _free_subnet() -> int:
    """The third octet of a 10.200.N.0/30 that no route or address here uses."""
    used = _ip("-4", "route", "show") + _ip("-4", "-o", "addr", "show")
    n: int
    for n in [*range(os.getpid() % 200 + 20, 250), *range(20, 250)]:
        if f"10.200.{n}." not in used:
            return n
    raise RuntimeError("no free 10.200.N.0/30 subnet")


@contextlib.contextmanager
def namespace_link() -> Iterator[Link]:
    """A namespace and a veth pair (host 10.200.N.1/30, namespace 10.200.N.2/30); both are
    removed on the way out, whatever happens."""
    tag = f"{os.getpid() % 100000}"
    n = _free_subnet()
    link = Link(f"mcobs-fault-{tag}", f"mcf{tag}h", f"mcf{tag}n", f"10.200.{n}.1", f"10.200.{n}.2")
    try:
        _ip("netns", "add", link.namespace)
        _ip("link", "add", link.host_if, "type", "veth", "peer", "name", link.ns_if)
        _ip("link", "set", link.ns_if, "netns", link.namespace)
        _ip("addr", "add", f"{link.host_address}/30", "dev", link.host_if)
        _ip("link", "set", link.host_if, "up")
        _ip("addr", "add", f"{link.ns_address}/30", "dev", link.ns_if, namespace=link.namespace)
        _ip("link", "set", link.ns_if, "up", namespace=link.namespace)
        _ip("link", "set", "lo", "up", namespace=link.namespace)
        yield link
    finally:
        _ip("link", "delete", link.host_if, check=False)  # takes its peer along
        _ip("netns", "delete", link.namespace, check=False)


@contextlib.asynccontextmanager
async def cluster_in_namespace(link: Link, workdir: Path) -> AsyncIterator[dict[str, str]]:
    """`tests.faults.netns_sim` inside the namespace; its JSON description."""
    with (workdir / "netns-sim.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", link.namespace,
            sys.executable, "-m", "tests.faults.netns_sim",
            "--host", link.ns_address, "--index", "3",
            "--kubeconfig", str(workdir / "kubeconfig-netns"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            raise AssertionError((workdir / "netns-sim.log").read_text())
        yield json.loads(line)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await asyncio.wait_for(process.wait(), 10)


async def _set_ready(control: str, ready: int) -> None:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{control}/api/v1/sim/clusters/sim-04/services/default/web/ready",
            json={"ready": ready},
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def test_a_partitioned_cluster_leaves_dns_alone_and_comes_back_when_healed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    reason = _netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with namespace_link() as link:
        async with (
            cluster_in_namespace(link, tmp_path) as remote,
            SimFleet.default(clusters=3) as fleet,
        ):
            kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
            entries = [
                *fleet_entries(fleet, kubeconfig),
                ClusterEntry(
                    remote["name"],
                    remote["region"],
                    Path(remote["kubeconfig"]),
                    remote["prometheus_url"],
                ),
            ]
            serve = ServeProcess(
                serve_config(
                    entries,
                    redis_url=redis_server.url,
                    prefix="faults-partition",
                    dns_port=free_udp_port(),
                    http_port=free_port(),
                ),
                tmp_path,
            )
            await serve.start()
            async with stopping(serve):
                await _scenario(fleet, serve, link, remote)


async def _scenario(
    fleet: SimFleet, serve: ServeProcess, link: Link, remote: dict[str, str]
) -> None:
    port = serve.dns_port
    local = frozenset(web_address(fleet, c) for c in fleet.names)
    far = remote["address"]
    everyone = local | {far}
    us = web_address(fleet, "us-east")

    async def dns_is(expected: frozenset[str]) -> bool:
        return await answers(port) == expected

    await eventually(lambda: dns_is(everyone), 40, "every cluster answered")
    async with logging_dns(port) as dns_log:
        link.partition()
        gone = await eventually(lambda: dns_is(local), 15, "the partitioned cluster left DNS")
        # The others are unaffected: an outage among them still shows, and recovers.
        await fleet.outage("us-east")
        await eventually(lambda: dns_is(local - {us}), 6, "us-east left during the partition")
        await fleet.recover("us-east")
        await eventually(lambda: dns_is(local), 8, "us-east came back during the partition")

        link.heal()
        back = await eventually(lambda: dns_is(everyone), 30, "the healed cluster came back")
    assert all(isinstance(v, frozenset) and (local - {us}) <= v for _, v, _ in dns_log.seen), (
        "a loopback cluster left DNS during the partition"
    )
    assert max(took for _, _, took in dns_log.seen) < 0.5

    # Changes made in the healed cluster reach DNS: its watches are live again.
    await _set_ready(remote["control"], 0)
    unready = await eventually(lambda: dns_is(local), 10, "sim-04's unready web left DNS")
    await _set_ready(remote["control"], 3)
    await eventually(lambda: dns_is(everyone), 10, "sim-04's ready web came back")
    print(
        f"partitioned: out after {gone:.2f}s; healed: back after {back:.2f}s; "
        f"endpoint change after heal seen in {unready:.2f}s"
    )
