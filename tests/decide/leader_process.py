"""One replica's decision side, as a process: a Redis lease and a decider loop.

    python -m tests.decide.leader_process REDIS_URL PREFIX HOLDER TTL

Prints `LEADER <holder> <token>` when it becomes the leader and `FOLLOWER
<holder>` when it stops being one; the takeover test kills these with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time

from mcobs.answer import ZonePolicy, build_zone
from mcobs.decide.decider import Decider
from mcobs.decide.events import RedisEventLog, connect
from mcobs.decide.lease import RedisLease
from mcobs.zone import Nameserver
from tests.core.factories import report, service, snapshot

POLICY = ZonePolicy(
    origin="global.example.com.", nameservers=(Nameserver("ns1.global.example.com."),)
)


async def main(url: str, prefix: str, holder: str, ttl: float) -> None:
    client = connect(url, timeout=min(2.0, ttl / 2))
    lease = RedisLease(client, prefix=prefix, holder=holder, ttl=ttl)
    log = RedisEventLog(client, prefix=prefix)

    def leadership(leading: bool) -> None:
        print(f"LEADER {holder} {lease.token}" if leading else f"FOLLOWER {holder}", flush=True)

    decider = Decider(lease, log, stale_after=3600.0, on_leadership=leadership)
    now = time.time()
    snap = snapshot(
        report("eu-west", (service("eu-west", ("192.0.2.1",)),), observed_at=now),
        report("us-east", (service("us-east", ("198.51.100.1",)),), observed_at=now),
    )
    decider.on_plan(snap, build_zone(snap, POLICY, now))
    task = asyncio.create_task(decider.run())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"STARTED {holder}", flush=True)
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
