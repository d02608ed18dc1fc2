"""Leadership: one replica at a time holds a lease, and each holding has a fencing token.

The lease lives in Redis (`RedisLease`): acquiring it is "create if absent,
with an expiry" plus `INCR` of a counter in the same Lua script, so every
acquisition gets a token larger than any before it. The holder renews it every
`renew_every` seconds (default ttl/3), only while it still holds it. A replica
that dies stops renewing, the key expires after `ttl`, and the next replica to
try takes over with a new token. Writes made on behalf of the lease carry
(`holder`, `token`) as a `Fence`, and the event log rejects a fence that is no
longer the lease's (`mcobs.decide.events.StaleLeader`).

A replica believes it leads only while its last successful claim is younger
than `ttl` minus a safety margin, judged by its own (injected) clock, so a
replica cut off from Redis stops deciding before anyone else can take over.
A Redis error means "not leader" at once (logged once per outage).

`MemoryLease` is the same contract on a `LeaseBoard` in memory: `mcobs demo`
(one process: always the leader) and tests (several leases on one board, a
fake clock for expiry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from mcobs.decide.keys import DecideKeys
from mcobs.redisconn import REDIS_ERRORS, AnyRedis

log = logging.getLogger(__name__)

DEFAULT_TTL: Final = 10.0
SAFETY: Final = 0.1
"""Fraction of the ttl a holder gives up early, for clock drift and network delay."""
MIN_WAIT: Final = 0.01

# KEYS: lease, counter. ARGV: holder, ttl ms, since (Unix seconds, text).
# Returns {1, token, ttl ms} when the caller holds the lease (new or renewed),
# {0, token of the holder, remaining ms} when another replica holds it.
_CLAIM: Final = """
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder == false then
  local token = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token, 'since', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, token, tonumber(ARGV[2])}
end
local token = tonumber(redis.call('HGET', KEYS[1], 'token'))
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, token, tonumber(ARGV[2])}
end
return {0, token, redis.call('PTTL', KEYS[1])}
"""

# KEYS: lease. ARGV: holder, token. Deletes the lease only if it is still the caller's.
_RELEASE: Final = """
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'token') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Fence:
    """Who writes, under which token: checked by the event log on every append."""

    holder: str
    token: int


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """The lease as stored: who holds it, its fencing token, since when (Unix seconds)."""

    holder: str
    token: int
    since: float


class Lease(Protocol):
    """One replica's handle on the shared lease."""

    @property
    def holder(self) -> str:
        """This replica's holder id (unique per handle; never a secret)."""
        ...

    @property
    def is_leader(self) -> bool:
        """Whether this replica holds the lease now (by its last successful claim)."""
        ...

    @property
    def fence(self) -> Fence | None:
        """(holder, token) while leader, else None."""
        ...

    async def step(self) -> bool:
        """Acquire the lease if it is free, renew it if it is ours; returns `is_leader`."""
        ...

    def next_step_in(self) -> float:
        """Seconds until `step` should run again."""
        ...

    def drop(self) -> None:
        """Stop believing we lead, at once (a write was fenced off)."""
        ...

    async def release(self) -> None:
        """Give the lease up if it is still ours, so another replica takes over at once."""
        ...

    async def current(self) -> LeaseInfo | None:
        """The lease as stored (whoever holds it); None when nobody does."""
        ...


def default_holder() -> str:
    """`<hostname>-<pid>-<random>`: unique per process start, readable in the API."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class _Claims:
    """Local bookkeeping shared by both lease kinds: validity, schedule, logging."""

    def __init__(
        self, holder: str, ttl: float, renew_every: float | None, clock: Callable[[], float]
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self.holder = holder
        self.ttl = ttl
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        if not 0 < self.renew_every < ttl * (1 - SAFETY):
            raise ValueError(f"renew_every must be between 0 and {ttl * (1 - SAFETY):g}s")
        self.clock = clock
        self.token: int | None = None
        self.valid_until = 0.0
        self.retry_in = self.renew_every

    @property
    def is_leader(self) -> bool:
        return self.token is not None and self.clock() < self.valid_until

    def won(self, token: int, started: float) -> None:
        if self.token != token:
            log.info("%s is the leader now (fencing token %d)", self.holder, token)
        self.token = token
        self.valid_until = started + self.ttl * (1 - SAFETY)
        self.retry_in = self.renew_every

    def lost(self, remaining: float | None) -> None:
        if self.token is not None:
            log.warning("%s is no longer the leader (token %d)", self.holder, self.token)
        self.token = None
        self.valid_until = 0.0
        wait = self.renew_every if remaining is None or remaining <= 0 else remaining
        self.retry_in = max(MIN_WAIT, min(self.renew_every, wait))

    def next_step_in(self) -> float:
        return self.renew_every if self.is_leader else self.retry_in

    def fence(self) -> Fence | None:
        return Fence(self.holder, self.token) if self.is_leader and self.token else None


def _integer(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


class _ClaimsHolder:
    """What both leases answer from their claims (holder, leadership, fencing)."""

    _claims: _Claims

    @property
    def holder(self) -> str:
        return self._claims.holder

    @property
    def ttl(self) -> float:
        return self._claims.ttl

    @property
    def is_leader(self) -> bool:
        return self._claims.is_leader

    @property
    def token(self) -> int | None:
        """The fencing token while leader."""
        return self._claims.token if self.is_leader else None

    @property
    def fence(self) -> Fence | None:
        return self._claims.fence()

    def next_step_in(self) -> float:
        return self._claims.next_step_in()

    def drop(self) -> None:
        self._claims.lost(None)


class RedisLease(_ClaimsHolder):
    """The lease in Redis (see the module docstring); `client` is not closed here.

    `client`: one server, a Sentinel master or a `RedisCluster` (`mcobs.redisconn.connect`).
    """

    def __init__(
        self,
        client: AnyRedis,
        *,
        prefix: str = "mcobs",
        holder: str | None = None,
        ttl: float = DEFAULT_TTL,
        renew_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = DecideKeys.for_prefix(prefix)
        self._claims = _Claims(holder or default_holder(), ttl, renew_every, clock)
        self._wall_clock = wall_clock
        self._client = client
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._outage: str | None = None

    async def step(self) -> bool:
        claims = self._claims
        started = claims.clock()
        try:
            reply = await self._claim(
                keys=[self.keys.lease, self.keys.token],
                args=[claims.holder, max(1, round(claims.ttl * 1000)), repr(self._wall_clock())],
            )
        except REDIS_ERRORS as error:
            if self._outage is None:
                log.warning("lease: redis unavailable, not leading until it answers: %s", error)
            self._outage = str(error)
            claims.lost(None)
            return False
        if self._outage is not None:
            log.info("lease: redis answers again")
            self._outage = None
        won, token, remaining = (_integer(v) for v in reply)
        if won == 1 and token is not None:
            claims.won(token, started)
        else:
            claims.lost(None if remaining is None else remaining / 1000)
        return claims.is_leader

    async def release(self) -> None:
        token, self._claims.token = self._claims.token, None
        if token is None:
            return
        try:
            await self._release(keys=[self.keys.lease], args=[self.holder, token])
            log.info("%s released the lease (token %d)", self.holder, token)
        except REDIS_ERRORS as error:
            log.warning("lease: could not release (it expires by itself): %s", error)

    async def current(self) -> LeaseInfo | None:
        """Raises one of `mcobs.redisconn.REDIS_ERRORS` when Redis cannot be read."""
        raw = await self._client.hgetall(self.keys.lease)
        fields = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        token = _integer(fields.get("token"))
        if "holder" not in fields or token is None:
            return None
        try:
            since = float(fields.get("since", "0"))
        except ValueError:
            since = 0.0
        return LeaseInfo(fields["holder"], token, since)


class LeaseBoard:
    """The shared lease in memory: what Redis holds for `RedisLease`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counter = 0
        self._held: LeaseInfo | None = None
        self._deadline = 0.0

    def _live(self) -> LeaseInfo | None:
        if self._held is not None and self._clock() >= self._deadline:
            self._held = None
        return self._held

    def claim(self, holder: str, ttl: float, since: float) -> tuple[bool, int, float]:
        """(won, token, seconds left): the same answers as the Redis script."""
        held = self._live()
        if held is None:
            self._counter += 1
            held = self._held = LeaseInfo(holder, self._counter, since)
        if held.holder != holder:
            return False, held.token, self._deadline - self._clock()
        self._deadline = self._clock() + ttl
        return True, held.token, ttl

    def release(self, fence: Fence) -> None:
        if self.check(fence):
            self._held = None

    def current(self) -> LeaseInfo | None:
        return self._live()

    def check(self, fence: Fence) -> bool:
        """Whether `fence` is the live lease's (the event log's write check)."""
        held = self._live()
        return held is not None and (held.holder, held.token) == (fence.holder, fence.token)

    def expire(self) -> None:
        """Tests: let the lease run out now, as a dead holder's would."""
        self._held = None


class MemoryLease(_ClaimsHolder):
    """A `Lease` on a `LeaseBoard`. Alone on its board it is always the leader."""

    def __init__(
        self,
        board: LeaseBoard,
        *,
        holder: str | None = None,
        ttl: float = DEFAULT_TTL,
        renew_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._board = board
        self._claims = _Claims(holder or default_holder(), ttl, renew_every, clock)
        self._wall_clock = wall_clock

    async def step(self) -> bool:
        started = self._claims.clock()
        won, token, remaining = self._board.claim(self.holder, self._claims.ttl, self._wall_clock())
        if won:
            self._claims.won(token, started)
        else:
            self._claims.lost(remaining)
        return self._claims.is_leader

    async def release(self) -> None:
        token, self._claims.token = self._claims.token, None
        if token is not None:
            self._board.release(Fence(self.holder, token))

    async def current(self) -> LeaseInfo | None:
        return self._board.current()


async def hold(
    lease: Lease,
    *,
    on_change: Callable[[bool], None] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    release_timeout: float = 2.0,
) -> None:
    """Keep claiming `lease` until cancelled, then release it.

    `on_change(is_leader)` is called whenever leadership is won or lost (also
    when it lapses between claims because Redis stopped answering in time).
    """
    leading = False
    try:
        while True:
            await lease.step()
            if lease.is_leader != leading:
                leading = lease.is_leader
                if on_change is not None:
                    on_change(leading)
            await sleep(lease.next_step_in())
            if leading and not lease.is_leader:
                leading = False
                if on_change is not None:
                    on_change(False)
    finally:
        if leading and on_change is not None:
            on_change(False)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(lease.release(), release_timeout)
