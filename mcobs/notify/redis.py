"""The outbox store in Redis (redis-py asyncio): durable, shared by every replica.

Key layout, with the default prefix `mcobs`:

    mcobs:{webhooks}:deliveries       hash  delivery id -> delivery JSON (see `records`)
    mcobs:{webhooks}:leases           hash  delivery id -> latest lease token (an integer)
    mcobs:{webhooks}:due:<consumer>   zset  delivery id -> Unix time of its next attempt
    mcobs:{webhooks}:dead             zset  delivery id -> Unix time it was dead-lettered

Every key carries the hash tag `{webhooks}`, so on Redis Cluster the outbox
lives in one hash slot and each operation is one Lua script over declared
keys: enqueueing an event for all its consumers, claiming (due -> leased
with a new token), and each outcome (checked against the token) are atomic.
A delivery claimed by a replica that died stays in its due queue, scored at
the end of its lease, and comes due again then.

Durability across a Redis restart is Redis's own: run it with AOF (or a
replica) when events must survive that. Any Redis or socket error becomes
`OutboxUnavailable`. A stored delivery that does not decode is dropped with
an error log, never sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from mcobs.notify.records import Delivery, DeliveryDecodeError, decode_delivery, encode_delivery
from mcobs.notify.store import (
    DEFAULT_MAX_DEAD_LETTERS,
    Claim,
    DeadLetterPage,
    OutboxUnavailable,
)
from mcobs.redisconn import REDIS_ERRORS, AnyRedis, connect

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# KEYS: deliveries, due(1), due(2), ... ARGV: now, id(1), record(1), id(2), record(2), ...
_ADD: Final = """
local added = 0
for i = 2, #KEYS do
  local id = ARGV[2 * i - 2]
  if redis.call('HSETNX', KEYS[1], id, ARGV[2 * i - 1]) == 1 then
    redis.call('ZADD', KEYS[i], ARGV[1], id)
    added = added + 1
  end
end
return added
"""

# KEYS: due, deliveries, leases. ARGV: now, lease deadline, limit.
_CLAIM: Final = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local record = redis.call('HGET', KEYS[2], id)
  if record then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    local token = redis.call('HINCRBY', KEYS[3], id, 1)
    table.insert(out, id)
    table.insert(out, record)
    table.insert(out, token)
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
return out
"""

# KEYS: due, deliveries, leases. ARGV: id, token.
_COMPLETE: Final = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

# KEYS: due, deliveries, leases. ARGV: id, token, record, next attempt.
_RESCHEDULE: Final = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
return 1
"""

# KEYS: due, deliveries, leases, dead. ARGV: id, token, record, dead_at, max dead letters.
# The lease token is kept, so a claimer from before the burial stays locked out after a revive.
_BURY: Final = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[5])
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, excess - 1)) do
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, excess - 1)
end
return 1
"""

# KEYS: dead, deliveries, due. ARGV: id, record, now.
_REVIVE: Final = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class OutboxKeys:
    """The Redis names of one outbox (see the module docstring)."""

    base: str
    deliveries: str
    leases: str
    dead: str

    @classmethod
    def for_prefix(cls, prefix: str) -> OutboxKeys:
        if not prefix or any(c in prefix for c in "{}"):
            raise ValueError(f"outbox prefix must be non-empty and without braces: {prefix!r}")
        base = f"{prefix}:{{webhooks}}"
        return cls(base, f"{base}:deliveries", f"{base}:leases", f"{base}:dead")

    def due(self, consumer: str) -> str:
        return f"{self.base}:due:{consumer}"


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class RedisOutboxStore:
    """An `OutboxStore` in Redis. `client` is closed by `close()` only when `owns_client`."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        prefix: str = "mcobs",
        max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS,
        owns_client: bool = False,
    ) -> None:
        if max_dead_letters < 1:
            raise ValueError("max_dead_letters must be at least 1")
        self.keys = OutboxKeys.for_prefix(prefix)
        self._client = client
        self._owns_client = owns_client
        self._max_dead = max_dead_letters
        self._add = client.register_script(_ADD)
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._reschedule = client.register_script(_RESCHEDULE)
        self._bury = client.register_script(_BURY)
        self._revive = client.register_script(_REVIVE)
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "mcobs",
        timeout: float = 2.0,
        max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS,
    ) -> RedisOutboxStore:
        """A store on its own client (`mcobs.redisconn.connect`: one server, a Cluster, Sentinel).

        `timeout` bounds connecting and each reply.
        """
        client = connect(url, timeout=timeout)
        return cls(client, prefix=prefix, max_dead_letters=max_dead_letters, owns_client=True)

    async def _call(self, what: str, operation: Awaitable[_T]) -> _T:
        if self._closed:
            if asyncio.iscoroutine(operation):
                operation.close()
            raise OutboxUnavailable("outbox store is closed")
        try:
            return await operation
        except REDIS_ERRORS as error:
            raise OutboxUnavailable(f"redis {what} failed: {error}") from error

    async def add(self, deliveries: Sequence[Delivery], now: float) -> int:
        if not deliveries:
            return 0
        keys = [self.keys.deliveries, *(self.keys.due(d.consumer) for d in deliveries)]
        args: list[str | bytes] = [repr(now)]
        for delivery in deliveries:
            args += [delivery.id, encode_delivery(delivery)]
        added = await self._call("add", self._add(keys=keys, args=args))
        return int(added)

    async def claim(self, consumer: str, now: float, lease: float, limit: int) -> list[Claim]:
        due = self.keys.due(consumer)
        raw = await self._call(
            "claim",
            self._claim(
                keys=[due, self.keys.deliveries, self.keys.leases],
                args=[repr(now), repr(now + lease), str(limit)],
            ),
        )
        claims = []
        for i in range(0, len(raw), 3):
            id_, record, token = _text(raw[i]), raw[i + 1], int(raw[i + 2])
            try:
                delivery = decode_delivery(record)
                if delivery.id != id_ or delivery.consumer != consumer:
                    raise DeliveryDecodeError(f"stored under {id_!r} in the queue of {consumer!r}")
            except DeliveryDecodeError as error:
                log.error("webhook delivery %r dropped: it does not decode: %s", id_, error)
                await self._call(
                    "drop",
                    self._complete(
                        keys=[due, self.keys.deliveries, self.keys.leases], args=[id_, str(token)]
                    ),
                )
                continue
            claims.append(Claim(delivery, token))
        return claims

    async def complete(self, claim: Claim) -> bool:
        delivery = claim.delivery
        keys = [self.keys.due(delivery.consumer), self.keys.deliveries, self.keys.leases]
        done = await self._call(
            "complete", self._complete(keys=keys, args=[delivery.id, str(claim.token)])
        )
        return bool(done)

    async def reschedule(self, claim: Claim, delivery: Delivery, at: float) -> bool:
        keys = [self.keys.due(delivery.consumer), self.keys.deliveries, self.keys.leases]
        args: list[str | bytes] = [
            delivery.id,
            str(claim.token),
            encode_delivery(delivery),
            repr(at),
        ]
        return bool(await self._call("reschedule", self._reschedule(keys=keys, args=args)))

    async def bury(self, claim: Claim, delivery: Delivery) -> bool:
        assert delivery.dead_at is not None
        keys = [
            self.keys.due(delivery.consumer),
            self.keys.deliveries,
            self.keys.leases,
            self.keys.dead,
        ]
        args: list[str | bytes] = [
            delivery.id,
            str(claim.token),
            encode_delivery(delivery),
            repr(delivery.dead_at),
            str(self._max_dead),
        ]
        return bool(await self._call("bury", self._bury(keys=keys, args=args)))

    async def _dead_page(self, offset: int, limit: int) -> tuple[int, list[bytes | str]]:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zcard(self.keys.dead)
            pipe.zrevrange(self.keys.dead, offset, offset + limit - 1)
            total, ids = await pipe.execute()
        return int(total), ids

    async def dead_letters(self, offset: int, limit: int) -> DeadLetterPage:
        if limit <= 0:
            total = await self._call("dead letters", self._client.zcard(self.keys.dead))
            return DeadLetterPage(int(total), ())
        total, ids = await self._call("dead letters", self._dead_page(offset, limit))
        if not ids:
            return DeadLetterPage(total, ())
        records = await self._call(
            "dead letters", self._client.hmget(self.keys.deliveries, [_text(i) for i in ids])
        )
        items = []
        for id_, record in zip(ids, records, strict=True):
            if record is None:
                continue
            try:
                items.append(decode_delivery(record))
            except DeliveryDecodeError as error:
                log.error("dead letter %r does not decode: %s", _text(id_), error)
        return DeadLetterPage(total, tuple(items))

    async def revive(self, delivery_id: str, now: float) -> Delivery | None:
        record = await self._call("revive", self._client.hget(self.keys.deliveries, delivery_id))
        if record is None:
            return None
        try:
            delivery = decode_delivery(record).revived(now)
        except DeliveryDecodeError as error:
            log.error("dead letter %r does not decode: %s", delivery_id, error)
            return None
        keys = [self.keys.dead, self.keys.deliveries, self.keys.due(delivery.consumer)]
        args: list[str | bytes] = [delivery_id, encode_delivery(delivery), repr(now)]
        revived = await self._call("revive", self._revive(keys=keys, args=args))
        return delivery if revived else None

    async def next_due(self, consumer: str) -> float | None:
        first = await self._call(
            "next due", self._client.zrange(self.keys.due(consumer), 0, 0, withscores=True)
        )
        return float(first[0][1]) if first else None

    async def _cards(self, consumers: Sequence[str]) -> list[int]:
        async with self._client.pipeline(transaction=False) as pipe:
            for consumer in consumers:
                pipe.zcard(self.keys.due(consumer))
            counts: list[int] = await pipe.execute()
        return counts

    async def pending(self, consumers: Sequence[str]) -> Mapping[str, int]:
        if not consumers:
            return {}
        counts = await self._call("pending", self._cards(consumers))
        return dict(zip(consumers, (int(c) for c in counts), strict=True))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()
