"""Kill the leader process: another replica takes over within the lease time, with a
larger fencing token, and the dead leader's token is rejected."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from collections.abc import AsyncIterator

import pytest

from mcobs.decide.events import RedisEventLog, StaleLeader, connect
from mcobs.decide.lease import Fence, RedisLease
from mcobs.notify.event import cluster_state_changed
from tests.redis_server import RedisServer

TTL = 2.0
MARGIN = 1.5
"""Scheduling slack on a busy 2-core machine (the takeover itself lands at the ttl)."""


class Replica:
    def __init__(self, holder: str, process: asyncio.subprocess.Process) -> None:
        self.holder = holder
        self.process = process
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            await self.lines.put(raw.decode().strip())


async def next_leader(replicas: list[Replica], within: float) -> tuple[Replica, int, float]:
    """The first replica to print LEADER, its token, and when (monotonic)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for replica in replicas:
            while not replica.lines.empty():
                line = replica.lines.get_nowait()
                if line.startswith("LEADER "):
                    return replica, int(line.split()[2]), time.monotonic()
        await asyncio.sleep(0.01)
    raise AssertionError(f"no leader within {within}s")


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[list[Replica]]:
    started = []
    for n in range(3):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.decide.leader_process",
            redis_server.url, "takeover", f"replica-{n}", str(TTL),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started.append(Replica(f"replica-{n}", process))
    yield started
    for replica in started:
        if replica.process.returncode is None:
            replica.process.send_signal(signal.SIGTERM)
    for replica in started:
        try:
            await asyncio.wait_for(replica.process.wait(), 10)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()
        await replica.reader


async def test_killing_the_leader_hands_over_within_the_lease_time(
    redis_server: RedisServer, replicas: list[Replica]
) -> None:
    leader, token, _ = await next_leader(replicas, within=30)
    client = connect(redis_server.url)
    log = RedisEventLog(client, prefix="takeover")
    try:
        held = await RedisLease(client, prefix="takeover").current()
        assert held is not None and (held.holder, held.token) == (leader.holder, token)

        leader.process.kill()  # SIGKILL: no release, the lease must run out
        killed_at = time.monotonic()
        await leader.process.wait()
        others = [r for r in replicas if r is not leader]
        successor, new_token, took_over_at = await next_leader(others, within=TTL + 10)
        assert took_over_at - killed_at <= TTL + MARGIN
        assert new_token > token

        held = await RedisLease(client, prefix="takeover").current()
        assert held is not None and (held.holder, held.token) == (successor.holder, new_token)
        stale = cluster_state_changed("x", "healthy", "down", clock=time.time, rng=random.Random())
        with pytest.raises(StaleLeader):
            await log.append([stale], fence=Fence(leader.holder, token))
        assert await log.load_facts()  # the first leader's facts, which the successor loaded
    finally:
        await log.close()
        await client.aclose()
