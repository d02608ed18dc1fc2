"""Rendezvous assignment: one owner per cluster, the same everywhere, minimal movement."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from mcobs.shard.assign import assign, moved, owned_by, owner, score

CLUSTERS = [f"cluster-{n:02d}" for n in range(30)]
THREE = ["replica-a", "replica-b", "replica-c"]


def test_every_cluster_has_exactly_one_owner_among_the_members() -> None:
    owners = assign(CLUSTERS, THREE)
    assert set(owners) == set(CLUSTERS)
    assert set(owners.values()) <= set(THREE)
    shares = [owned_by(m, CLUSTERS, THREE) for m in THREE]
    assert frozenset().union(*shares) == set(CLUSTERS)
    assert sum(len(s) for s in shares) == len(CLUSTERS)  # no overlap


def test_owners_do_not_depend_on_order_or_process() -> None:
    shuffled = THREE[:]
    random.Random(7).shuffle(shuffled)
    assert assign(reversed(CLUSTERS), shuffled) == assign(CLUSTERS, THREE)
    # A fixed hash, not Python's salted hash(): other processes (and versions: replicas
    # of a rolling upgrade must agree) compute the same weights.
    assert score("eu-west", "replica-a") == 0x812A1F36A605FDF4
    assert owner("eu-west", []) is None
    assert assign(CLUSTERS, []) == {}


def test_the_load_is_spread() -> None:
    clusters = [f"c{n}" for n in range(3000)]
    counts = Counter(assign(clusters, THREE).values())
    assert all(800 < counts[m] < 1200 for m in THREE), counts


def test_a_new_member_takes_clusters_only_for_itself_and_about_its_share() -> None:
    clusters = [f"c{n}" for n in range(1000)]
    before = assign(clusters, THREE)
    after = assign(clusters, [*THREE, "replica-d"])
    changes = moved(before, after)
    assert all(new == "replica-d" for _, new in changes.values())
    assert 150 < len(changes) < 350  # about a quarter


def test_a_leaving_member_gives_up_only_its_own_clusters() -> None:
    before = assign(CLUSTERS, THREE)
    after = assign(CLUSTERS, ["replica-a", "replica-c"])
    changes = moved(before, after)
    assert changes and all(old == "replica-b" for old, _ in changes.values())
    assert set(changes) == {c for c, m in before.items() if m == "replica-b"}


def test_owned_by_counts_the_asker_as_live() -> None:
    assert owned_by("alone", CLUSTERS, []) == frozenset(CLUSTERS)
    for a, b in itertools.permutations(THREE, 2):
        assert not owned_by(a, CLUSTERS, THREE) & owned_by(b, CLUSTERS, THREE)


def test_moved_reports_gains_and_losses() -> None:
    assert moved({"x": "a"}, {"x": "b", "y": "a"}) == {"x": ("a", "b"), "y": ("", "a")}
    assert moved({"x": "a"}, {}) == {"x": ("a", "")}
