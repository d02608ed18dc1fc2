"""Sharded collection: N replicas share the clusters, each collected by one live replica.

`assign` is the pure part (rendezvous hashing); `manager.ShardManager` holds the
per-cluster leases in Redis and says which clusters this replica collects.
"""

from mcobs.shard.assign import assign, moved, owned_by, owner, score
from mcobs.shard.manager import ShardKeys, ShardManager

__all__ = ["ShardKeys", "ShardManager", "assign", "moved", "owned_by", "owner", "score"]
