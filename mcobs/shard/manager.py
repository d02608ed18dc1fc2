"""Sharded collection: each cluster is collected by exactly one live replica.

Every replica runs a `ShardManager`. Each step (every ttl/3) it

1. heartbeats its membership: `ZADD members <now + ttl> <replica>` and drops
   expired members, judged by Redis's clock (`TIME` in the script), then
   reads the live members;
2. computes which clusters it should own by rendezvous hashing over the live
   members (`mcobs.shard.assign`), the same answer on every replica that sees
   the same members;
3. in one Lua script, claims or renews the per-cluster lease of each of those
   (`SET NX PX`, or `PEXPIRE` when it is already ours) and releases the leases
   it holds but should no longer own (`DEL` if still ours), so the new owner
   gets them at its next try rather than after an expiry.

It collects only the clusters whose lease it holds (`owned`, announced through
`on_change`). A lease held by someone else is retried every ttl/12 until
the holder lets go, so a handover takes at most about ttl/3 + ttl/12.
A replica that stops (its `run` is cancelled) releases everything and leaves
the member set: the others take over at their next step. A replica that dies
stops renewing: its membership and leases expire after `ttl`, and the others
take over within ttl + ttl/3. A replica that cannot reach Redis keeps its
clusters while its last successful claim is younger than ttl minus a 10 %
safety margin (its own clock), then drops them all before anyone else can
claim them.

Key layout, with the default prefix `mcobs` (one hash slot on Redis Cluster):

    mcobs:{shard}:members           zset    replica id -> membership deadline (Redis ms)
    mcobs:{shard}:lease:<cluster>   string  the holder's replica id, PEXPIRE'd after ttl

Every replica must be configured with the same clusters: a cluster is
collected once the replica it hashes to knows it. Two replicas may both
collect a cluster for a moment during a handover only if one's clock-based
belief outlives the lease (it does not: the belief ends 10 % early); a
double write of one cluster's report is harmless (the catalog replaces a
report as a whole), a gap is not, which is why releases are explicit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from mcobs.redisconn import REDIS_ERRORS, AnyRedis
from mcobs.shard.assign import owned_by

log = logging.getLogger(__name__)

DEFAULT_TTL: Final = 10.0
SAFETY: Final = 0.1
"""Fraction of the ttl a holder gives up early, for clock drift and network delay."""
MIN_WAIT: Final = 0.01

# KEYS: members. ARGV: replica, ttl ms, "1" to leave.
# Returns the live members after the heartbeat (or departure).
_HEARTBEAT: Final = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 3 * ttl)
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS: the leases to hold (the first ARGV[3]), then the leases to let go.
# ARGV: replica, ttl ms, how many to hold.
# Returns, per key to hold, its holder afterwards ("" for a released one).
_CLAIM: Final = """
local out = {}
local hold = tonumber(ARGV[3])
for i = 1, #KEYS do
  if i <= hold then
    if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
      out[i] = ARGV[1]
    else
      local holder = redis.call('GET', KEYS[i])
      if holder == ARGV[1] then
        redis.call('PEXPIRE', KEYS[i], ARGV[2])
      end
      out[i] = holder or ''
    end
  else
    if redis.call('GET', KEYS[i]) == ARGV[1] then
      redis.call('DEL', KEYS[i])
    end
    out[i] = ''
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """The Redis names of one shard group (see the module docstring)."""

    base: str
    members: str

    @classmethod
    def for_prefix(cls, prefix: str) -> ShardKeys:
        if not prefix or any(c in prefix for c in "{}"):
            raise ValueError(f"shard prefix must be non-empty and without braces: {prefix!r}")
        base = f"{prefix}:{{shard}}"
        return cls(base, f"{base}:members")

    def lease(self, cluster: str) -> str:
        return f"{self.base}:lease:{cluster}"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else ""


OnChange = Callable[[frozenset[str]], None]


class ShardManager:
    """One replica's share of the clusters (see the module docstring).

    `client` is not closed here. `clock` (monotonic seconds) judges how long
    a claim stays valid locally; Redis judges expiry with its own clock.
    `on_change(owned)` is called, in the manager's task, whenever the set of
    clusters this replica should collect changes (with an empty set when it
    stops).
    """

    def __init__(
        self,
        client: AnyRedis,
        replica_id: str,
        clusters: Sequence[str],
        *,
        ttl: float = DEFAULT_TTL,
        renew_every: float | None = None,
        prefix: str = "mcobs",
        clock: Callable[[], float] = time.monotonic,
        on_change: OnChange | None = None,
        release_timeout: float = 2.0,
    ) -> None:
        problems = []
        if not replica_id:
            problems.append("replica_id must not be empty")
        if ttl <= 0:
            problems.append(f"ttl must be positive, got {ttl}")
        if len(set(clusters)) != len(clusters):
            problems.append("clusters must be unique")
        bad = [c for c in clusters if not c or any(ch in c for ch in "{} \t\n")]
        if bad:
            problems.append(f"cluster names must be non-empty, without braces or spaces: {bad}")
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        if ttl > 0 and not 0 < self.renew_every < ttl * (1 - SAFETY):
            problems.append(f"renew_every must be between 0 and {ttl * (1 - SAFETY):g}s")
        if problems:
            raise ValueError("; ".join(problems))
        self.keys = ShardKeys.for_prefix(prefix)
        self.replica_id = replica_id
        self.clusters: tuple[str, ...] = tuple(clusters)
        self.ttl = ttl
        self._client = client
        self._clock = clock
        self.on_change = on_change
        """Settable after construction (a hub that builds its collectors later)."""
        self._release_timeout = release_timeout
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._claim = client.register_script(_CLAIM)
        self._owned: frozenset[str] = frozenset()
        self._members: tuple[str, ...] = ()
        self._pending: frozenset[str] = frozenset()
        self._valid_until = 0.0
        self._renewed_at: float | None = None
        self._failures = 0
        self._outage: str | None = None

    @property
    def owned(self) -> frozenset[str]:
        """The clusters this replica holds the lease of and should collect now."""
        return self._owned

    @property
    def members(self) -> tuple[str, ...]:
        """The live replicas as last read (sorted), this one included once it has joined."""
        return self._members

    @property
    def waiting_for(self) -> frozenset[str]:
        """Clusters this replica should own but another still holds (a handover under way)."""
        return self._pending

    @property
    def renewal_age(self) -> float | None:
        """Seconds since the last successful claim began (by `clock`); None before the first."""
        return None if self._renewed_at is None else max(0.0, self._clock() - self._renewed_at)

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    def _announce(self, owned: frozenset[str]) -> None:
        if owned == self._owned:
            return
        gained, lost = sorted(owned - self._owned), sorted(self._owned - owned)
        self._owned = owned
        log.info(
            "%s collects %d of %d clusters (+%s, -%s)",
            self.replica_id,
            len(owned),
            len(self.clusters),
            ",".join(gained) or "none",
            ",".join(lost) or "none",
        )
        if self.on_change is not None:
            try:
                self.on_change(owned)
            except Exception:
                log.exception("shard on_change callback failed")

    def _lapse_if_due(self) -> None:
        if self._owned and self._clock() >= self._valid_until:
            log.warning(
                "%s: no successful claim for %.1fs; giving up its clusters",
                self.replica_id,
                self.ttl * (1 - SAFETY),
            )
            self._announce(frozenset())

    async def step(self) -> frozenset[str]:
        """Heartbeat, rebalance and claim once; returns `owned`. Never raises for Redis errors."""
        started = self._clock()
        try:
            raw_members = await self._heartbeat(
                keys=[self.keys.members], args=[self.replica_id, self.ttl_ms, "0"]
            )
            members = tuple(sorted(_text(m) for m in raw_members))
            wanted = sorted(owned_by(self.replica_id, self.clusters, members))
            others = sorted(set(self.clusters) - set(wanted))
            keys = [self.keys.lease(c) for c in (*wanted, *others)]
            holders = await self._claim(keys=keys, args=[self.replica_id, self.ttl_ms, len(wanted)])
        except REDIS_ERRORS as error:
            self._failures += 1
            if self._outage is None:
                log.warning("%s: shard leases unavailable: %s", self.replica_id, error)
            self._outage = str(error) or type(error).__name__
            self._lapse_if_due()
            return self._owned
        if self._outage is not None:
            log.info("%s: shard leases available again", self.replica_id)
            self._outage = None
        self._failures = 0
        self._members = members
        held = {c for c, h in zip(wanted, holders, strict=False) if _text(h) == self.replica_id}
        self._pending = frozenset(wanted) - held
        self._valid_until = started + self.ttl * (1 - SAFETY)
        self._renewed_at = started
        self._announce(frozenset(held))
        return self._owned

    def next_step_in(self) -> float:
        """Seconds until `step` should run again."""
        if self._failures:
            wait = min(self.renew_every, 0.1 * 2.0 ** min(self._failures, 10))
            if self._owned:
                wait = min(wait, self._valid_until - self._clock())
            return max(MIN_WAIT, wait)
        if self._pending:
            return max(MIN_WAIT, self.renew_every / 4)
        return self.renew_every

    async def leave(self) -> None:
        """Release every lease this replica holds and leave the member set, at once."""
        self._announce(frozenset())
        self._pending = frozenset()
        keys = [self.keys.lease(c) for c in self.clusters]
        try:
            if keys:
                await self._claim(keys=keys, args=[self.replica_id, self.ttl_ms, 0])
            await self._heartbeat(
                keys=[self.keys.members], args=[self.replica_id, self.ttl_ms, "1"]
            )
        except REDIS_ERRORS as error:
            log.warning(
                "%s: could not leave (its leases expire by themselves): %s", self.replica_id, error
            )
            return
        log.info("%s left the shard group", self.replica_id)

    async def run(self) -> None:
        """Step until cancelled, then leave (bounded by `release_timeout`)."""
        try:
            while True:
                await self.step()
                await asyncio.sleep(self.next_step_in())
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.leave(), self._release_timeout)
            self._announce(frozenset())

    async def holders(self) -> dict[str, str | None]:
        """cluster -> replica holding its lease now (None: nobody), read from Redis.

        Raises one of `mcobs.redisconn.REDIS_ERRORS` when Redis cannot be read.
        """
        if not self.clusters:
            return {}
        values = await self._client.mget([self.keys.lease(c) for c in self.clusters])
        return {
            c: (_text(v) if v is not None else None)
            for c, v in zip(self.clusters, values, strict=True)
        }
