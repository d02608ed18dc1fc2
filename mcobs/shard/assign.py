"""Which live replica owns each cluster: rendezvous (highest random weight) hashing. Pure.

Every replica scores every (cluster, member) pair with the same stable hash
and a cluster belongs to the member with the highest score. Any replica that
sees the same members computes the same owners, with no coordination, and
when a member joins or leaves only the clusters it gains or held move: a
join takes about 1/(n+1) of the clusters, all to the newcomer; a departure
spreads the leaver's clusters over the others, and nothing else moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping


def score(cluster: str, member: str) -> int:
    """The weight of `member` for `cluster`: 64 bits of BLAKE2b, the same in every process."""
    digest = hashlib.blake2b(
        cluster.encode() + b"\x00" + member.encode(), digest_size=8, person=b"mcobs-hrw"
    ).digest()
    return int.from_bytes(digest, "big")


def owner(cluster: str, members: Collection[str]) -> str | None:
    """The member that owns `cluster` (None without members); ties go to the larger name."""
    if not members:
        return None
    return max(members, key=lambda member: (score(cluster, member), member))


def assign(clusters: Iterable[str], members: Collection[str]) -> dict[str, str]:
    """cluster -> owner, for every cluster (empty without members)."""
    if not members:
        return {}
    return {cluster: owner_ for cluster in clusters if (owner_ := owner(cluster, members))}


def owned_by(member: str, clusters: Iterable[str], members: Collection[str]) -> frozenset[str]:
    """The clusters `member` owns when `members` are live (`member` counts as live)."""
    everyone = {*members, member}
    return frozenset(c for c in clusters if owner(c, everyone) == member)


def moved(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """cluster -> (old owner, new owner) for the clusters whose owner changed ("" = none)."""
    return {
        cluster: (before.get(cluster, ""), after.get(cluster, ""))
        for cluster in before.keys() | after.keys()
        if before.get(cluster, "") != after.get(cluster, "")
    }
