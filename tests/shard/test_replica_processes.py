"""Three `mcobs serve` replicas, each a process of its own, share nine simulated clusters
(another process) through Redis leases (issue 6). One replica is SIGKILLed: within the lease
time every cluster it collected is leased and collected again by a survivor, the catalog
loses nothing meanwhile, and after a change in a taken-over cluster both survivors give the
new DNS answer within 1 s of each other."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import pytest
import redis
import yaml

from mcobs.shard.assign import assign
from mcobs.shard.manager import ShardKeys
from tests.decide.test_serve_takeover import eventually, started
from tests.redis_server import RedisServer, free_port

CLUSTERS = 9
REPLICAS = ("r1", "r2", "r3")
PREFIX = "replica-processes"
LEASE_TTL = 3.0
TAKEOVER_BOUND = LEASE_TTL * 1.5 + 2.0
"""SIGKILL -> each of the dead replica's clusters leased by a survivor and reported again.

The shard manager's own bound is ttl + ttl/3 + ttl/12 (the dead member and its leases run
out after ttl, the survivors step every ttl/3, and retry a lease still held every ttl/12):
4.25 s here. The rest is the new collector's first sweep and slack for a busy 2-core box."""
AGREEMENT = 1.0
"""The most the survivors may differ in when they start giving a changed answer."""
SETTLE = 90.0
CHANGE_BOUND = 15.0
POLL = 0.05
ZONE = "global.example.com"
WEB = f"web.default.{ZONE}."
CANARY = f"canary.shop.{ZONE}."
EXPORTED = 3  # default/web, default/api, shop/canary (kube-system/internal is not exported)

pytestmark = pytest.mark.timeout(300)  # the bounded waits below add up to more than 120 s


def request(url: str, body: object = None, method: str = "GET") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    call = urllib.request.Request(url, data=data, method=method)
    call.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(call, timeout=5) as response:
        return json.load(response)


def ask(ports: Sequence[int], name: str) -> list[frozenset[str] | None]:
    """The A records of `name` from each DNS port (None: no answer within 1 s).

    Every query is sent before any answer is read, so a stall of this process delays the
    reading of all replicas alike and cannot pass for a difference between them."""
    query = dns.message.make_query(name, "A")
    found: list[frozenset[str] | None] = []
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) for _ in ports
        ]
        for sock, port in zip(sockets, ports, strict=True):
            sock.setblocking(False)  # dnspython enforces `expiration` on non-blocking sockets
            dns.query.send_udp(sock, query, ("127.0.0.1", port))
        for sock, port in zip(sockets, ports, strict=True):
            try:
                response, _ = dns.query.receive_udp(
                    sock, ("127.0.0.1", port), expiration=time.time() + 1, query=query
                )
            except (dns.exception.Timeout, OSError):
                found.append(None)
                continue
            found.append(frozenset(rr.to_text() for rrset in response.answer for rr in rrset))
    return found


@dataclass
class Replica:
    name: str
    dns_port: int
    http_port: int
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/api/v1"

    def clusters(self) -> dict[str, dict[str, Any]]:
        body = request(f"{self.api}/clusters")
        return {c["name"]: c for c in body["clusters"]}

    def services(self) -> set[tuple[str, str]]:
        body = request(f"{self.api}/services")
        return {(s["namespace"], s["name"]) for s in body["services"]}


class Leases:
    """The source of truth of who collects what: the shard keys in Redis."""

    def __init__(self, url: str, clusters: Sequence[str]) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
        self.keys = ShardKeys.for_prefix(PREFIX)
        self.clusters = tuple(clusters)

    def holders(self) -> dict[str, str | None]:
        values = self.client.mget([self.keys.lease(c) for c in self.clusters])
        return {
            c: v if isinstance(v, str) else None for c, v in zip(self.clusters, values, strict=True)
        }

    def members(self) -> set[str]:
        now_ms = int(time.time() * 1000)  # same host as the server: its clock
        live = self.client.zrangebyscore(self.keys.members, now_ms, "+inf")
        return {str(m) for m in live}


def complete(catalog: dict[str, dict[str, Any]], names: Collection[str]) -> bool:
    return set(catalog) == set(names) and all(
        c["services"] == EXPORTED and c["services_synced"] for c in catalog.values()
    )


def settled(
    replicas: Sequence[Replica], leases: Leases, names: Sequence[str], web: frozenset[str]
) -> dict[str, str] | None:
    """cluster -> holder once every cluster has its rendezvous owner among the live members,
    every replica's catalog is complete and every replica answers `web` with all clusters."""
    live = {r.name for r in replicas}
    holders = leases.holders()
    if leases.members() != live or holders != assign(names, live):
        return None
    if not all(complete(r.clusters(), names) for r in replicas):
        return None
    if any(answer != web for answer in ask([r.dns_port for r in replicas], WEB)):
        return None
    return {c: h for c, h in holders.items() if h is not None}


def spread_of_change(
    survivors: Sequence[Replica], control: str, cluster: str, ready: int, want: str
) -> tuple[float, float]:
    """Set the canary's ready endpoints in `cluster` and wait until every survivor answers
    `want` only; returns (first answer -> last answer, change -> last answer) in seconds.

    A replica that gave the new answer must not go back to the old one."""
    ports = [r.dns_port for r in survivors]
    first: dict[str, float] = {}
    changed = time.monotonic()
    request(
        f"{control}/api/v1/sim/clusters/{cluster}/services/shop/canary/ready",
        {"ready": ready},
        "POST",
    )
    while len(first) < len(survivors):
        answers = ask(ports, CANARY)
        now = time.monotonic()
        for replica, answer in zip(survivors, answers, strict=True):
            if answer == frozenset({want}):
                first.setdefault(replica.name, now)
            else:
                assert replica.name not in first, f"{replica.name} went back to {answer}"
        assert now - changed < CHANGE_BOUND, f"not every survivor answers {want}: {answers}"
        time.sleep(0.005)
    return max(first.values()) - min(first.values()), max(first.values()) - changed


@contextlib.contextmanager
def logs_on_failure(folder: Path) -> Iterator[None]:
    """Print every process's log (pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        for path in sorted(folder.glob("*.log")):
            print(f"----- {path.name}\n{path.read_text(errors='replace')[-20000:]}")
        raise


def test_a_killed_replica_s_clusters_are_collected_again_and_answers_agree(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    sim_args = [sys.executable, "-m", "mcobs.sim", "--clusters", str(CLUSTERS)]
    sim_args += ["--kubeconfig", str(kubeconfig), "--control-port", "0"]
    with (
        logs_on_failure(tmp_path),
        started(sim_args, tmp_path / "sim.log") as sim,
        contextlib.ExitStack() as stack,
    ):

        def described() -> dict[str, Any] | None:
            lines = (tmp_path / "sim.log").read_text().splitlines()
            return json.loads(lines[0]) if lines else None

        fleet = eventually(described, 30, "simulated clusters started")
        control: str = fleet["control"]
        names: list[str] = [c["name"] for c in fleet["clusters"]]
        # `canary` is served by the first cluster of the order that can: names[0] until its
        # endpoints turn unready, then names[1].
        canary = {name: f"10.0.{i}.1" for i, name in enumerate(names)}
        for name in names:
            request(
                f"{control}/api/v1/sim/clusters/{name}/services/shop/canary",
                {
                    "type": "LoadBalancer",
                    "ports": [{"name": "http", "port": 80}],
                    "addresses": [canary[name]],
                    "annotations": {
                        "mcobs.io/global": "true",
                        "mcobs.io/strategy": "failover",
                        "mcobs.io/failover-order": ",".join(names),
                    },
                },
                "PUT",
            )

        replicas = []
        for name in REPLICAS:
            replica = Replica(
                name, free_port(), free_port(), tmp_path / f"{name}.yaml", tmp_path / f"{name}.log"
            )
            config = {
                "zone": ZONE,
                # `all`: web answers with every serving cluster (weighted caps at 8 of 9)
                "dns": {"host": "127.0.0.1", "port": replica.dns_port, "strategy": "all"},
                "http": {"host": "127.0.0.1", "port": replica.http_port},
                "redis": {"url": own_redis.url, "prefix": PREFIX},
                "shard": {"enabled": True, "lease_ttl": LEASE_TTL, "replica_id": name},
                "collect": {"interval": 1.0},
                "clusters": [{**c, "kubeconfig": fleet["kubeconfig"]} for c in fleet["clusters"]],
            }
            replica.config.write_text(yaml.safe_dump(config))
            serve = [sys.executable, "-m", "mcobs", "serve", "--config", str(replica.config)]
            replica.process = stack.enter_context(started(serve, replica.log))
            replicas.append(replica)
        leases = Leases(own_redis.url, names)
        stack.callback(leases.client.close)

        # The web answer with every cluster in it, from the first replica that has them all.
        def whole_web() -> frozenset[str] | None:
            for answer in ask([r.dns_port for r in replicas], WEB):
                if answer is not None and len(answer) == CLUSTERS:
                    return answer
            return None

        web = eventually(whole_web, SETTLE, "a web answer with every cluster")
        holders = eventually(
            lambda: settled(replicas, leases, names, web),
            SETTLE,
            "every cluster leased to its owner, complete catalogs, whole answers",
        )
        assert ask([r.dns_port for r in replicas], CANARY) == [frozenset({canary[names[0]]})] * 3
        services = replicas[0].services()
        assert {("default", "web"), ("default", "api"), ("shop", "canary")} <= services
        reports = replicas[0].clusters()

        # SIGKILL the replica collecting names[0]: nothing is released, leases run out.
        victim = next(r for r in replicas if r.name == holders[names[0]])
        survivors = [r for r in replicas if r is not victim]
        orphaned = {c for c, h in holders.items() if h == victim.name}
        assert victim.process is not None
        killed = time.monotonic()
        victim.process.kill()
        victim.process.wait(10)
        dead_at = time.time()  # any report observed later comes from a survivor

        # Until every orphaned cluster is leased and reported again, read each ~50 ms: who
        # holds what, both survivors' catalogs and both survivors' web answers. Times are
        # taken after the reads, so they bound the takeover from above.
        leased: dict[str, float] = {}
        fresh: dict[str, float] = {}
        while not leased.keys() == fresh.keys() == orphaned:
            live = leases.members()
            now_held = leases.holders()
            views = [r.clusters() for r in survivors]
            answers = ask([r.dns_port for r in survivors], WEB)
            now = time.monotonic()
            for cluster, holder in now_held.items():
                if cluster not in orphaned:
                    assert holder == holders[cluster], f"{cluster} moved to {holder}"
                elif holder in live and holder != victim.name:
                    leased.setdefault(cluster, now)
            for view in views:  # nothing leaves the catalog, nothing loses services
                assert set(view) == set(names)
                assert all(view[c]["services"] == reports[c]["services"] for c in names)
            for cluster in orphaned:
                if all(view[cluster]["observed_at"] > dead_at for view in views):
                    fresh.setdefault(cluster, now)
            assert answers == [web] * len(survivors), answers
            assert now - killed < TAKEOVER_BOUND or leased.keys() == fresh.keys() == orphaned, (
                f"after {now - killed:.1f}s: leased again {sorted(leased)}, "
                f"reported again {sorted(fresh)}, of {sorted(orphaned)}"
            )
            time.sleep(POLL)
        took_lease = max(leased.values()) - killed
        took_report = max(fresh.values()) - killed
        print(
            f"takeover of {sorted(orphaned)}: leased {took_lease:.2f}s, reported {took_report:.2f}s"
        )
        assert leases.holders() == assign(names, [r.name for r in survivors])
        for replica in survivors:
            assert replica.services() == services
            assert complete(replica.clusters(), names)

        # A change in a taken-over cluster: both survivors answer it within 1 s of each other.
        spread, latency = spread_of_change(survivors, control, names[0], 0, canary[names[1]])
        print(f"unready {names[0]}: answers {spread:.3f}s apart, {latency:.3f}s after the change")
        assert spread < AGREEMENT
        spread, latency = spread_of_change(survivors, control, names[0], 3, canary[names[0]])
        print(f"ready {names[0]}: answers {spread:.3f}s apart, {latency:.3f}s after the change")
        assert spread < AGREEMENT
        assert all(r.process is not None and r.process.poll() is None for r in survivors)
        assert sim.poll() is None
