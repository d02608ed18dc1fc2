"""Throwaway Redis Cluster and Redis Sentinel deployments on loopback, for tests.

    with RedisClusterServers() as cluster:          # 3 masters + 3 replicas
        client = connect(cluster.url)               # redis+cluster://127.0.0.1:p1,...
        ...
        cluster.kill_master_of("mcobs:{catalog}:reports")   # SIGKILL; waits for promotion

    with RedisSentinelServers() as sentinel:        # 1 master, 1 replica, 3 sentinels
        client = connect(sentinel.url)              # redis+sentinel://.../mymaster
        sentinel.failover()                         # SENTINEL FAILOVER; waits for the switch
        sentinel.kill_master()                      # or a crash: SIGKILL the master

Every server binds 127.0.0.1 on free ports, keeps nothing on disk (`--save ''
--appendonly no`; the cluster and sentinel config files go to a temporary
directory) and is stopped on exit, including the ones a test killed.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from redis import Redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from tests.processes import Managed, stop_process
from tests.redis_server import REDIS_SERVER, _answers_ping, free_port

REDIS_CLI = "/usr/bin/redis-cli"
SLOTS = 16384


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(RedisError, OSError):
            if condition():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _client(port: int) -> Redis:
    return Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)


def _query(port: int, *command: str) -> Any:
    with _client(port) as client:
        return client.execute_command(*command)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _info(port: int, section: str) -> dict[str, Any]:
    """`INFO section`, or `CLUSTER INFO` for "cluster-info", as parsed by redis-py."""
    with _client(port) as client:
        if section == "cluster-info":
            raw = client.execute_command("CLUSTER INFO")
        else:
            raw = client.info(section)
    return {str(k): v for k, v in dict(raw).items()}


class _Process:
    """One redis-server (or sentinel) process."""

    def __init__(self, port: int, args: list[str], binary: str = REDIS_SERVER) -> None:
        self.port = port
        self.args = [shutil.which(binary) or binary, *args]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"redis on port {self.port} exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis on port {self.port} did not answer PING")
            time.sleep(0.01)

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye to the cluster."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        stop_process(process, timeout)


def _common(port: int, workdir: Path) -> list[str]:
    return [
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--dir", str(workdir),
        "--repl-diskless-sync-delay", "0",
        "--shutdown-on-sigterm", "now",  # no wait for replicas: nothing is kept anyway
    ]  # fmt: skip


class RedisClusterServers(Managed):
    """A Redis Cluster of `masters` masters with `replicas` replicas each, on loopback."""

    def __init__(self, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 2000) -> None:
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.nodes: list[_Process] = []

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        """`redis+cluster://` with every node as a seed (mcobs.redisconn)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self, timeout: float = 30.0) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="mcobs-cluster-")
        workdir = Path(self._workdir.name)
        try:
            for _ in range(self.masters * (1 + self.replicas)):
                port, bus = free_port(), free_port()
                node = _Process(
                    port,
                    [
                        *_common(port, workdir),
                        "--cluster-enabled", "yes",
                        "--cluster-port", str(bus),
                        "--cluster-config-file", str(workdir / f"nodes-{port}.conf"),
                        "--cluster-node-timeout", str(self.node_timeout_ms),
                    ],
                )  # fmt: skip
                self.nodes.append(node)
                node.start()
            for node in self.nodes:
                node.wait_ready()
            subprocess.run(
                [
                    shutil.which(REDIS_CLI) or REDIS_CLI, "--cluster", "create",
                    *(f"127.0.0.1:{p}" for p in self.ports),
                    "--cluster-replicas", str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )  # fmt: skip
            _wait(self._healthy, timeout, "the cluster to be ok on every node")
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        for node in self.nodes:
            if not node.running:
                continue
            info = _info(node.port, "cluster-info")
            if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != SLOTS:
                return False
            if int(info.get("cluster_known_nodes", "0")) < len(self.nodes):
                return False
        if len(self.live_masters()) != self.masters:
            return False
        return all(
            _info(n.port, "replication").get("master_link_status") == "up"
            for n in self.nodes
            if n.running and n.port not in self.live_masters()
        )

    def live_masters(self) -> list[int]:
        return [n.port for n in self.nodes if n.running and self._role(n.port) == "master"]

    def _role(self, port: int) -> str:
        return _info(port, "replication").get("role", "?")

    def _live_port(self) -> int:
        return next(n.port for n in self.nodes if n.running)

    def master_of(self, key: str) -> int:
        """Port of the master serving `key`'s slot, as the live nodes see it."""
        slot = key_slot(key.encode())
        for start, end, master, *_ in _query(self._live_port(), "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise RuntimeError(f"slot {slot} is not served")

    def kill_master_of(self, key: str, timeout: float = 20.0) -> tuple[int, int]:
        """SIGKILL the master of `key`'s slot; wait for its replica's promotion.

        Returns (killed port, promoted port). The killed node stays down.
        """
        old = self.master_of(key)
        next(n for n in self.nodes if n.port == old).kill()
        slot = key_slot(key.encode())

        def promoted() -> bool:
            for node in self.nodes:
                if not node.running:
                    continue
                info = _info(node.port, "cluster-info")
                if info.get("cluster_state") != "ok":
                    return False
            new = self.master_of(key)
            return new != old and self._role(new) == "master" and self._serves(new, slot)

        _wait(promoted, timeout, f"a replica of {old} to take over slot {slot}")
        return old, self.master_of(key)

    def fail_over_gracefully(self, key: str, timeout: float = 20.0) -> tuple[int, int]:
        """`CLUSTER FAILOVER FORCE` on a replica of `key`'s master: a switch, nothing dies.

        The old master becomes a replica of the new one. (FORCE skips the handshake
        with the master, which Redis 7.0 does not always complete right after the
        cluster formed.) Returns (old port, new port).
        """
        old = self.master_of(key)
        old_id = _text(_query(old, "CLUSTER", "MYID"))
        replica = next(
            n.port
            for n in self.nodes
            if n.running
            and n.port != old
            and _info(n.port, "replication").get("master_port") == old
            and _text(_query(n.port, "CLUSTER", "MYID")) != old_id
        )
        _query(replica, "CLUSTER", "FAILOVER", "FORCE")
        slot = key_slot(key.encode())
        _wait(
            lambda: self.master_of(key) == replica and self._serves(replica, slot),
            timeout,
            f"{replica} to take over slot {slot}",
        )
        return old, replica

    def _serves(self, port: int, slot: int) -> bool:
        with _client(port) as client:
            return int(client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) >= 0

    def revive(self, timeout: float = 30.0) -> None:
        """Restart killed nodes (they rejoin as replicas); wait until every shard is whole."""
        for node in self.nodes:
            if not node.running:
                node.start()
                node.wait_ready()
        _wait(self._healthy, timeout, "the revived nodes to rejoin")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


class RedisSentinelServers(Managed):
    """One master, `replicas` replicas and `sentinels` sentinels (quorum 2) on loopback."""

    def __init__(
        self,
        *,
        service: str = "mymaster",
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10000,
    ) -> None:
        self.service = service
        self.replica_count = replicas
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.servers: list[_Process] = []
        self.sentinels: list[_Process] = []

    @property
    def url(self) -> str:
        """`redis+sentinel://` with every sentinel (mcobs.redisconn)."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self, timeout: float = 20.0) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="mcobs-sentinel-")
        workdir = Path(self._workdir.name)
        try:
            master_port = free_port()
            for i in range(1 + self.replica_count):
                port = master_port if i == 0 else free_port()
                args = _common(port, workdir)
                if i > 0:
                    args += ["--replicaof", "127.0.0.1", str(master_port)]
                server = _Process(port, args)
                self.servers.append(server)
                server.start()
            for server in self.servers:
                server.wait_ready()
            _wait(lambda: self._replicas_in_sync(master_port), timeout, "the replicas to sync")
            for _ in range(self.sentinel_count):
                port = free_port()
                conf = workdir / f"sentinel-{port}.conf"
                conf.write_text(
                    f"port {port}\n"
                    "bind 127.0.0.1\n"
                    f"dir {workdir}\n"
                    f"sentinel monitor {self.service} 127.0.0.1 {master_port} 2\n"
                    f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
                    f"sentinel parallel-syncs {self.service} 1\n",
                    encoding="utf-8",
                )
                sentinel = _Process(port, [str(conf), "--sentinel"])
                self.sentinels.append(sentinel)
                sentinel.start()
            for sentinel in self.sentinels:
                sentinel.wait_ready()
            _wait(self._sentinels_agree, timeout, "the sentinels to find each other")
        except BaseException:
            self.stop()
            raise

    def _replicas_in_sync(self, master: int) -> bool:
        info = _info(master, "replication")
        return int(info.get("connected_slaves", 0)) == self.replica_count and all(
            info.get(f"slave{i}", {}).get("state") == "online" for i in range(self.replica_count)
        )

    def _sentinels_agree(self) -> bool:
        master = self.servers[0].port
        for sentinel in self.sentinels:
            state = self._sentinel_master(sentinel.port)
            if int(state.get("port", 0)) != master:
                return False
            if int(state.get("num-other-sentinels", 0)) < self.sentinel_count - 1:
                return False
            if int(state.get("num-slaves", 0)) < self.replica_count:
                return False
        return True

    def _sentinel_master(self, port: int) -> dict[str, str]:
        raw = _query(port, "SENTINEL", "MASTER", self.service)
        pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
        return {_text(k): _text(v) for k, v in pairs}

    def master_port(self) -> int:
        """The master's port as the sentinels report it (first live sentinel)."""
        sentinel = next(s for s in self.sentinels if s.running)
        raw = _query(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(raw[1])

    def _switched_from(self, old: int) -> bool:
        ports = {self._sentinel_port_view(s.port) for s in self.sentinels if s.running}
        if len(ports) != 1:
            return False
        new = ports.pop()
        if new == old:
            return False
        return _info(new, "replication").get("role") == "master"

    def _sentinel_port_view(self, port: int) -> int:
        raw = _query(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(raw[1])

    def failover(self, timeout: float = 20.0) -> tuple[int, int]:
        """`SENTINEL FAILOVER`: a replica is promoted, the old master becomes its replica.

        Returns (old master port, new master port) once every sentinel agrees.
        """
        old = self.master_port()
        sentinel = next(s for s in self.sentinels if s.running)
        _query(sentinel.port, "SENTINEL", "FAILOVER", self.service)
        _wait(lambda: self._switched_from(old), timeout, "the sentinel failover")
        return old, self.master_port()

    def kill_master(self, timeout: float = 30.0) -> tuple[int, int]:
        """SIGKILL the master; wait until the sentinels promote a replica."""
        old = self.master_port()
        next(s for s in self.servers if s.port == old).kill()
        _wait(lambda: self._switched_from(old), timeout, "the sentinels to promote a replica")
        return old, self.master_port()

    def revive(self, timeout: float = 30.0) -> None:
        """Restart killed servers as replicas of the current master; wait until they sync.

        A demoted master the sentinels have not reconfigured yet (they wait a few
        seconds) is pointed at the new master here, as they would.
        """
        master = self.master_port()
        for server in self.servers:
            if server.running and server.port != master:
                if _info(server.port, "replication").get("role") == "master":
                    _query(server.port, "REPLICAOF", "127.0.0.1", str(master))
            elif not server.running:
                assert self._workdir is not None
                args = _common(server.port, Path(self._workdir.name))
                server.args[1:] = [*args, "--replicaof", "127.0.0.1", str(master)]
                server.start()
                server.wait_ready()
        _wait(lambda: self._replicas_in_sync(master), timeout, "the revived replicas to sync")

    def stop(self) -> None:
        for process in (*self.sentinels, *self.servers):
            process.stop()
        self.sentinels, self.servers = [], []
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


@contextlib.contextmanager
def redis_cluster() -> Iterator[RedisClusterServers]:
    with RedisClusterServers() as cluster:
        yield cluster
