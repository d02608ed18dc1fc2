"""A scripted, seeded churn of endpoint and cluster changes in a fleet.

    churn = Churn(fleet, random.Random(7), rate=20.0, seed=7)
    task = asyncio.create_task(churn.run())  # cancel it to stop

`rate` times a second (on a fixed schedule: the k-th change is due k/rate
seconds after `run` starts), with probability `cluster_share` a random
answering cluster refuses connections for `outage` seconds (never more than
`max_down` clusters at once, by default 1% of the fleet and at least 1);
otherwise a random exported Service of a random cluster gets a new number of
ready endpoints (0..total, never the current number). An outage that cannot
start becomes an endpoint change, so the rate holds. Changes go through the
same fleet operations as the control API, so watches and the control API see
them as usual.

The same seed, fleet and settings give the same changes. Each change and each
recovery is kept in `recent` with its time (Unix time unless `clock` is
injected), so a benchmark can line up what it observed with what was done.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple, TypeAlias

from mcobs.annotations import is_exported
from mcobs.sim.cluster import SimCluster
from mcobs.sim.fleet import SimFleet
from mcobs.sim.state import Service

Kind: TypeAlias = Literal["endpoints", "down", "up"]
Clock: TypeAlias = Callable[[], float]
Sleep: TypeAlias = Callable[[float], Awaitable[None]]

CLUSTER_SHARE = 0.1
OUTAGE = 3.0
HISTORY = 1000


class Change(NamedTuple):
    """One thing the churn did: `endpoints`, a cluster going `down`, or back `up`."""

    time: float
    kind: Kind
    cluster: str
    detail: str


def default_max_down(clusters: int) -> int:
    """1% of the fleet, at least 1."""
    return max(1, clusters // 100)


def settings_problems(
    *,
    rate: float,
    cluster_share: float = CLUSTER_SHARE,
    outage: float = OUTAGE,
    max_down: int | None = None,
    limit: int | None = None,
    history: int = HISTORY,
) -> list[str]:
    """Every reason these churn settings are invalid."""
    found = []
    if not (math.isfinite(rate) and rate > 0):
        found.append(f"rate: {rate} is not a positive number of changes per second")
    if not 0.0 <= cluster_share <= 1.0:
        found.append(f"cluster_share: {cluster_share} is not in 0..1")
    if not (math.isfinite(outage) and outage > 0):
        found.append(f"outage: {outage} is not a positive number of seconds")
    if max_down is not None and max_down < 1:
        found.append(f"max_down: {max_down} is less than 1")
    if limit is not None and limit < 0:
        found.append(f"limit: {limit} is negative")
    if history < 1:
        found.append(f"history: {history} is less than 1")
    return found


class Churn:
    """Applies random changes to `fleet` at a steady rate; see the module docstring."""

    def __init__(
        self,
        fleet: SimFleet,
        rng: random.Random,
        *,
        rate: float,
        cluster_share: float = CLUSTER_SHARE,
        outage: float = OUTAGE,
        max_down: int | None = None,
        limit: int | None = None,
        seed: int | None = None,
        history: int = HISTORY,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`limit`: stop after that many scheduled changes (None: run until cancelled).
        `seed` is only reported by `describe`; `rng` decides."""
        problems = settings_problems(
            rate=rate,
            cluster_share=cluster_share,
            outage=outage,
            max_down=max_down,
            limit=limit,
            history=history,
        )
        if problems:
            raise ValueError("; ".join(problems))
        self._fleet = fleet
        self._clusters = fleet.clusters
        self._rng = rng
        self.rate = rate
        self.cluster_share = cluster_share
        self.outage = outage
        self.max_down = default_max_down(len(self._clusters)) if max_down is None else max_down
        self.limit = limit
        self.seed = seed
        self._clock = clock
        self._sleep = sleep
        self._down: deque[tuple[float, str]] = deque()
        self._running = False
        self.applied = 0
        self.recent: deque[Change] = deque(maxlen=history)

    @property
    def down(self) -> list[str]:
        """The clusters this churn has taken down and not yet brought back."""
        return [name for _, name in self._down]

    async def run(self) -> None:
        """Change the fleet until cancelled or `limit` changes are done, then end every
        outage begun (after its full duration if not cancelled, at once if cancelled)."""
        if self._running:
            raise RuntimeError("this churn is already running")
        self._running = True
        start, scheduled = self._clock(), 0
        try:
            while self.limit is None or scheduled < self.limit:
                await self._wait_until(start + scheduled / self.rate)
                scheduled += 1
                await self._step()
            if self._down:
                await self._wait_until(self._down[-1][0])
        finally:
            while self._down:
                await self._recover()
            self._running = False

    def describe(self) -> dict[str, Any]:
        """Settings, progress and the recorded changes, as JSON-ready data."""
        return {
            "rate": self.rate,
            "seed": self.seed,
            "cluster_share": self.cluster_share,
            "outage": self.outage,
            "max_down": self.max_down,
            "limit": self.limit,
            "applied": self.applied,
            "down": self.down,
            "recent": [c._asdict() for c in self.recent],
        }

    async def _wait_until(self, due: float) -> None:
        while self._down and self._down[0][0] <= due:
            await self._sleep_until(self._down[0][0])
            await self._recover()
        await self._sleep_until(due)

    async def _sleep_until(self, due: float) -> None:
        await self._sleep(max(0.0, due - self._clock()))

    async def _step(self) -> None:
        change = None
        if self._rng.random() < self.cluster_share:
            change = await self._take_down()
        if change is None:
            change = self._change_endpoints()
        if change is not None:
            self.applied += 1
            self.recent.append(change)

    async def _take_down(self) -> Change | None:
        if len(self._down) >= self.max_down:
            return None
        down = set(self.down)
        candidates = [c for c in self._clusters if c.gate.mode == "up" and c.name not in down]
        if not candidates:
            return None
        name = self._rng.choice(candidates).name
        now = self._clock()
        self._down.append((now + self.outage, name))
        await self._fleet.outage(name)
        return Change(now, "down", name, f"refused for {self.outage:g}s")

    async def _recover(self) -> None:
        name = self._down[0][1]
        await self._fleet.recover(name)
        self._down.popleft()
        self.recent.append(Change(self._clock(), "up", name, "answering again"))

    def _change_endpoints(self) -> Change | None:
        cluster = self._rng.choice(self._clusters)
        services = _exported(cluster)
        if not services:
            return None
        service = self._rng.choice(services)
        namespace, name = service.meta.namespace, service.meta.name
        slice_ = cluster.endpoint_slice(namespace, name)
        endpoints = slice_.endpoints if slice_ else ()
        total, ready = len(endpoints), sum(e.ready for e in endpoints)
        if total == 0:
            return None
        new = self._rng.randrange(total)
        if new >= ready:
            new += 1
        self._fleet.set_ready(cluster.name, namespace, name, new)
        detail = f"{namespace}/{name} ready {ready}->{new} of {total}"
        return Change(self._clock(), "endpoints", cluster.name, detail)


def _exported(cluster: SimCluster) -> list[Service]:
    return [
        s
        for s in cluster.kube.items("services")
        if isinstance(s, Service) and is_exported(s.meta.annotations)
    ]
