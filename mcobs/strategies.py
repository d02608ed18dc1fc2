"""Routing strategies (pure): which clusters answer, in which order, for whom.

Each strategy turns a service's eligible clusters (best first) into lineups: an
ordered tuple of clusters one DNS answer is built from. A strategy that
depends on chance or on the client returns several lineups; the DNS server
picks one per query uniformly at random (among the client's region's lineups
for geo), so the lineups themselves carry the weights.

Randomness is injected: lineups are drawn from a `random.Random` seeded by the
caller, so the same catalog always gives the same lineups (and the same DNS
view, which keeps the answer cache warm).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

Lineup = tuple[str, ...]
"""Cluster names in answer order."""


@dataclass(frozen=True, slots=True)
class Candidate:
    cluster: str
    region: str
    weight: float
    """Selection weight: cluster weight x health score (> 0)."""
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Picks:
    lineups: tuple[Lineup, ...]
    """Picked uniformly per query when the client's region has no lineups of its own."""
    by_region: Mapping[str, tuple[Lineup, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    geo: bool = False
    notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Per cluster: how the strategy uses it (for the API)."""
    standby: frozenset[str] = frozenset()
    """Eligible clusters the strategy keeps out of every answer (failover standbys)."""


@dataclass(frozen=True, slots=True)
class StrategyContext:
    rng: random.Random
    lineups: int = 100
    """How many lineups a weighted choice is spread over (1% resolution at 100)."""
    depth: int | None = 8
    """Most clusters in one weighted or geo answer (None: all)."""
    failover_order: tuple[str, ...] | None = None
    regions: tuple[str, ...] = ()
    """Client regions to plan geo answers for."""
    distance: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({})
    )


class Strategy(Protocol):
    def pick(self, candidates: Sequence[Candidate], ctx: StrategyContext) -> Picks: ...


def _apportion(weights: Sequence[float], slots: int) -> list[int]:
    """Whole slots per weight, proportional, summing to `slots` (largest remainder)."""
    total = sum(weights)
    exact = [w / total * slots for w in weights]
    counts = [math.floor(x) for x in exact]
    remainders = [x - n for x, n in zip(exact, counts, strict=True)]
    by_remainder = sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)
    for i in by_remainder[: slots - sum(counts)]:
        counts[i] += 1
    return counts


def _weighted_order(pool: list[Candidate], rng: random.Random) -> list[Candidate]:
    """A weighted random order without replacement (Efraimidis-Spirakis keys)."""
    return sorted(pool, key=lambda c: rng.random() ** (1.0 / c.weight), reverse=True)


def _weighted_sample(
    pool: Sequence[Candidate],
    cumulative: Sequence[float],
    skip: Candidate,
    k: int,
    rng: random.Random,
) -> list[Candidate]:
    """`k` distinct candidates other than `skip`, drawn by weight (for pools much larger than k)."""
    picked: list[Candidate] = []
    seen = {id(skip)}
    total = cumulative[-1]
    for _ in range(k * 20):
        if len(picked) == k:
            break
        candidate = pool[bisect.bisect_right(cumulative, rng.random() * total)]
        if id(candidate) not in seen:
            seen.add(id(candidate))
            picked.append(candidate)
    return picked


def weighted_lineups(
    candidates: Sequence[Candidate], slots: int, rng: random.Random, depth: int | None = None
) -> tuple[Lineup, ...]:
    """Lineups whose first clusters follow the weights exactly (to 1/slots).

    Each lineup holds at most `depth` clusters (None: all), the rest drawn by weight.
    """
    if len(candidates) <= 1:
        return (tuple(c.cluster for c in candidates),)
    depth = len(candidates) if depth is None else max(1, min(depth, len(candidates)))
    cumulative = list(itertools.accumulate(c.weight for c in candidates))
    lineups: list[Lineup] = []
    for lead, count in zip(
        candidates, _apportion([c.weight for c in candidates], slots), strict=True
    ):
        for _ in range(count):
            if len(candidates) > 2 * depth:
                rest = _weighted_sample(candidates, cumulative, lead, depth - 1, rng)
            else:
                rest = _weighted_order([c for c in candidates if c is not lead], rng)[: depth - 1]
            lineups.append((lead.cluster, *(c.cluster for c in rest)))
    return tuple(lineups)


def _share_notes(candidates: Sequence[Candidate]) -> dict[str, str]:
    total = sum(c.weight for c in candidates)
    by_weight: dict[float, str] = {}  # clusters mostly share a few weights
    for c in candidates:
        if c.weight not in by_weight:
            by_weight[c.weight] = f"answers first for {c.weight / total:.0%} of queries"
    return {c.cluster: by_weight[c.weight] for c in candidates}


class Weighted:
    def pick(self, candidates: Sequence[Candidate], ctx: StrategyContext) -> Picks:
        return Picks(
            lineups=weighted_lineups(candidates, ctx.lineups, ctx.rng, ctx.depth),
            notes=MappingProxyType(_share_notes(candidates)),
        )


class All:
    def pick(self, candidates: Sequence[Candidate], ctx: StrategyContext) -> Picks:
        return Picks(lineups=(tuple(c.cluster for c in candidates),))


class Failover:
    def pick(self, candidates: Sequence[Candidate], ctx: StrategyContext) -> Picks:
        order = ctx.failover_order or ()
        listed = {name: i for i, name in reversed(list(enumerate(order)))}  # first place wins

        def position(c: Candidate) -> tuple[int, int, str]:
            return (listed.get(c.cluster, len(order)), c.priority, c.cluster)

        ranked = sorted(candidates, key=position)
        if not ranked:
            return Picks(lineups=((),))
        notes = {ranked[0].cluster: "active (first healthy in failover order)"}
        for n, c in enumerate(ranked[1:], start=2):
            notes[c.cluster] = f"standby #{n} in failover order"
        return Picks(
            lineups=((ranked[0].cluster,),),
            notes=MappingProxyType(notes),
            standby=frozenset(c.cluster for c in ranked[1:]),
        )


class Geo:
    """The nearest region's clusters, by a region-distance table; else weighted."""

    def pick(self, candidates: Sequence[Candidate], ctx: StrategyContext) -> Picks:
        fallback = weighted_lineups(candidates, ctx.lineups, ctx.rng, ctx.depth)
        by_region: dict[str, tuple[Lineup, ...]] = {}
        nearest_for: dict[str, list[str]] = {c.cluster: [] for c in candidates}
        for region in ctx.regions:
            nearest = _nearest(region, candidates, ctx.distance)
            if nearest:
                by_region[region] = weighted_lineups(nearest, ctx.lineups, ctx.rng, ctx.depth)
                for c in nearest:
                    nearest_for[c.cluster].append(region)
        notes = {
            name: "nearest for clients in " + ", ".join(regions)
            if regions
            else "answers only clients with no nearer region"
            for name, regions in nearest_for.items()
        }
        return Picks(
            lineups=fallback,
            by_region=MappingProxyType(by_region),
            geo=True,
            notes=MappingProxyType(notes),
        )


def _distance(a: str, b: str, table: Mapping[str, Mapping[str, float]]) -> float:
    if a == b:
        return 0.0
    return table.get(a, {}).get(b, table.get(b, {}).get(a, math.inf))


def _nearest(
    region: str, candidates: Sequence[Candidate], table: Mapping[str, Mapping[str, float]]
) -> list[Candidate]:
    distances = [_distance(region, c.region, table) for c in candidates]
    best = min(distances, default=math.inf)
    if math.isinf(best):
        return []
    return [c for c, d in zip(candidates, distances, strict=True) if d == best]


STRATEGIES: Mapping[str, Strategy] = MappingProxyType(
    {"weighted": Weighted(), "failover": Failover(), "geo": Geo(), "all": All()}
)
