"""`GET /api/v1/shard`: which clusters this replica collects, and who it shares them with.

    {"replica": "hub-a", "sharded": true, "members": ["hub-a", "hub-b"],
     "clusters": ["eu-west", "us-east"], "waiting_for": [], "configured_clusters": 3,
     "lease_ttl_seconds": 10.0, "renewal_age_seconds": 1.2}

Every replica answers for itself only; the answers of all live replicas together
name each configured cluster once. `replica` is its shard member id. Without
sharding a replica collects every configured cluster: `"sharded": false`, its id
is its decision lease holder's (as `/api/v1/leader` names it), it is its own only
member, and there is no lease to renew (`lease_ttl_seconds` and
`renewal_age_seconds` are null).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mcobs.shard.manager import ShardManager

SHARD_PATH = "/api/v1/shard"


@dataclass(frozen=True, slots=True)
class ShardView:
    """One replica's share of collection, as the API and the metrics show it."""

    replica: str
    sharded: bool
    members: tuple[str, ...]
    """The live replicas as last seen (sorted)."""
    clusters: tuple[str, ...]
    """The clusters this replica collects now (sorted)."""
    waiting_for: tuple[str, ...]
    """Clusters it should collect that another replica still holds (a handover)."""
    configured: int
    lease_ttl: float | None
    renewal_age: float | None
    """Seconds since its last successful claim began, by the manager's clock."""

    @classmethod
    def of(cls, shard: ShardManager) -> ShardView:
        return cls(
            replica=shard.replica_id,
            sharded=True,
            members=shard.members,
            clusters=tuple(sorted(shard.owned)),
            waiting_for=tuple(sorted(shard.waiting_for)),
            configured=len(shard.clusters),
            lease_ttl=shard.ttl,
            renewal_age=shard.renewal_age,
        )

    @classmethod
    def unsharded(cls, replica: str, collected: Iterable[str], configured: int) -> ShardView:
        return cls(replica, False, (replica,), tuple(sorted(collected)), (), configured, None, None)

    def json(self) -> dict[str, Any]:
        return {
            "replica": self.replica,
            "sharded": self.sharded,
            "members": list(self.members),
            "clusters": list(self.clusters),
            "waiting_for": list(self.waiting_for),
            "configured_clusters": self.configured,
            "lease_ttl_seconds": self.lease_ttl,
            "renewal_age_seconds": None if self.renewal_age is None else round(self.renewal_age, 3),
        }


def shard_routes(view: Callable[[], ShardView]) -> list[web.RouteDef]:
    """`GET /api/v1/shard` over `view` (read on every request; it never touches Redis)."""

    async def shard(request: web.Request) -> web.Response:
        return web.json_response(view().json())

    return [web.get(SHARD_PATH, shard)]
