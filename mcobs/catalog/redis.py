"""The catalog in Redis (redis-py asyncio): the source of truth shared by replicas.

Key layout, with the default prefix `mcobs`:

    mcobs:{catalog}:reports   hash     cluster name -> report JSON (see `codec`)
    mcobs:{catalog}:version   string   integer, INCR'ed by every change
    mcobs:{catalog}:expiry    zset     cluster name -> Unix deadline (only with `ttl`)
    mcobs:{catalog}:overrides hash     drain/<scope> or alert/<fingerprint> -> JSON
    mcobs:{catalog}:changes   channel  PUBLISHed with the new version after each change
                                       (SPUBLISHed on a Redis Cluster: sharded pub/sub)

Every key carries the hash tag `{catalog}`, so on Redis Cluster the whole
catalog lives in one hash slot: `put` and `remove` stay single Lua scripts
(write + INCR + PUBLISH, atomic, so no reader sees half a report or a report
without its version), and `snapshot` stays one MULTI/EXEC (HGETALL + GET +
ZRANGEBYSCORE), a consistent view in one round trip. One hash rather than a
key per cluster keeps the snapshot a single command over declared keys.

Redis 7.0 has no per-field TTL, so the optional `ttl` is kept in the expiry
zset: `snapshot` hides expired clusters and the next `put` deletes them.

On a Redis Cluster the channel shares the `{catalog}` tag too, so the same
scripts announce each change with `SPUBLISH` on the slot's own shard, and
`subscribe` reads it on a connection to the master that owns the slot
(`mcobs.redisconn.Subscription`). When that master fails, the subscription
breaks, is reopened on the promoted replica (re-reading the slot map), and
yields `None` so readers reload everything; `CatalogWatcher`'s polling covers
the gap in between. Through Sentinel the client reconnects to the new master.

Any Redis or socket error becomes `CatalogUnavailable`; `from_url` (any URL
`mcobs.redisconn.connect` takes: one server, `redis+cluster://`,
`redis+sentinel://`) sets short socket timeouts and at most one immediate
reconnect, so that happens quickly. An entry that does not decode is skipped
(and logged once per distinct problem), never served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError

from mcobs.catalog.codec import (
    CatalogDecodeError,
    alert_from_bytes,
    alert_to_bytes,
    check_report,
    drain_from_bytes,
    drain_to_bytes,
    report_from_bytes,
)
from mcobs.catalog.store import CatalogUnavailable
from mcobs.model import AlertMark, CatalogSnapshot, ClusterReport, Drain, Scope
from mcobs.redisconn import REDIS_ERRORS, AnyRedis, Subscription, connect, publish_command

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# KEYS: reports, version, expiry.
# ARGV: cluster, payload, now, deadline ("" = none), channel, PUBLISH or SPUBLISH.
_PUT: Final = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
for _, cluster in ipairs(expired) do
  redis.call('HDEL', KEYS[1], cluster)
  redis.call('ZREM', KEYS[3], cluster)
end
local version = redis.call('INCR', KEYS[2])
redis.call(ARGV[6], ARGV[5], version)
return version
"""

# KEYS: reports, version, expiry. ARGV: cluster, channel, PUBLISH or SPUBLISH.
_REMOVE: Final = """
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local version = redis.call('INCR', KEYS[2])
redis.call(ARGV[3], ARGV[2], version)
return version
"""


# KEYS: overrides, version. ARGV: field, payload ("" = delete), channel, PUBLISH or SPUBLISH.
_OVERRIDE: Final = """
if ARGV[2] == '' then
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
    return 0
  end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local version = redis.call('INCR', KEYS[2])
redis.call(ARGV[4], ARGV[3], version)
return version
"""
_DRAIN = "drain/"
_ALERT = "alert/"


@dataclass(frozen=True, slots=True)
class CatalogKeys:
    """The Redis names of one catalog (see the module docstring)."""

    reports: str
    version: str
    expiry: str
    channel: str
    overrides: str

    @classmethod
    def for_prefix(cls, prefix: str) -> CatalogKeys:
        if not prefix or any(c in prefix for c in "{}"):
            raise ValueError(f"catalog prefix must be non-empty and without braces: {prefix!r}")
        base = f"{prefix}:{{catalog}}"
        return cls(
            f"{base}:reports",
            f"{base}:version",
            f"{base}:expiry",
            f"{base}:changes",
            f"{base}:overrides",
        )


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _version(value: object) -> int | None:
    if isinstance(value, bytes | str):
        try:
            return int(value)
        except ValueError:
            return None
    return value if isinstance(value, int) else None


class RedisCatalog:
    """A `CatalogStore` in Redis.

    `client` (one server, a Sentinel master or a `RedisCluster`) is used as
    given (closed by `close()` only when `owns_client`); prefer `from_url`,
    which sets timeouts fit for failing fast. `ttl`: forget a
    cluster `ttl` seconds after its last `put` (None: never), judged by `clock`.
    `keepalive`: a silent subscription is PINGed after this many seconds and
    reconnected when the PING goes unanswered as long.
    """

    def __init__(
        self,
        client: AnyRedis,
        *,
        prefix: str = "mcobs",
        ttl: float | None = None,
        clock: Callable[[], float] = time.time,
        keepalive: float = 10.0,
        resubscribe_min: float = 0.1,
        resubscribe_max: float = 5.0,
        owns_client: bool = False,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self.keys = CatalogKeys.for_prefix(prefix)
        self._client = client
        self._publish = publish_command(client)
        self._owns_client = owns_client
        self._ttl = ttl
        self._clock = clock
        self._keepalive = keepalive
        self._resubscribe_min = resubscribe_min
        self._resubscribe_max = resubscribe_max
        self._put = client.register_script(_PUT)
        self._remove = client.register_script(_REMOVE)
        self._override = client.register_script(_OVERRIDE)
        self._decoded: dict[str, tuple[bytes | str, ClusterReport]] = {}
        self._skipped: Mapping[str, str] = MappingProxyType({})
        self._closing: asyncio.Future[None] | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "mcobs",
        timeout: float = 2.0,
        ttl: float | None = None,
        clock: Callable[[], float] = time.time,
        keepalive: float = 10.0,
        resubscribe_max: float = 5.0,
    ) -> RedisCatalog:
        """A catalog on its own client (`mcobs.redisconn.connect`).

        `timeout` bounds connecting and each reply. Raises
        `mcobs.redisconn.RedisUrlError` for a URL it cannot use.
        """
        return cls(
            connect(url, timeout=timeout),
            prefix=prefix,
            ttl=ttl,
            clock=clock,
            keepalive=keepalive,
            resubscribe_max=resubscribe_max,
            owns_client=True,
        )

    @property
    def skipped(self) -> Mapping[str, str]:
        """Entries the last snapshot skipped: cluster field -> why it did not decode."""
        return self._skipped

    async def _call(self, what: str, operation: Awaitable[_T]) -> _T:
        if self._closed:
            if asyncio.iscoroutine(operation):
                operation.close()
            raise CatalogUnavailable("catalog is closed")
        try:
            return await operation
        except REDIS_ERRORS as error:
            raise CatalogUnavailable(f"redis {what} failed: {error}") from error

    async def put(self, report: ClusterReport) -> None:
        payload = check_report(report)
        now = self._clock()
        deadline = "" if self._ttl is None else repr(now + self._ttl)
        keys = self.keys
        await self._call(
            "put",
            self._put(
                keys=[keys.reports, keys.version, keys.expiry],
                args=[report.cluster, payload, repr(now), deadline, keys.channel, self._publish],
            ),
        )

    async def remove(self, cluster: str) -> None:
        keys = self.keys
        await self._call(
            "remove",
            self._remove(
                keys=[keys.reports, keys.version, keys.expiry],
                args=[cluster, keys.channel, self._publish],
            ),
        )

    async def _write_override(self, field: str, payload: bytes) -> bool:
        keys = self.keys
        version = await self._call(
            "override",
            self._override(
                keys=[keys.overrides, keys.version],
                args=[field, payload, keys.channel, self._publish],
            ),
        )
        return bool(version)

    async def put_drain(self, drain: Drain) -> None:
        await self._write_override(_DRAIN + str(drain.scope), drain_to_bytes(drain))

    async def remove_drain(self, scope: Scope) -> bool:
        return await self._write_override(_DRAIN + str(scope), b"")

    async def put_alert(self, alert: AlertMark) -> None:
        await self._write_override(_ALERT + alert.fingerprint, alert_to_bytes(alert))

    async def remove_alert(self, fingerprint: str) -> bool:
        return await self._write_override(_ALERT + fingerprint, b"")

    async def _read(
        self,
    ) -> tuple[
        dict[bytes | str, bytes | str], object, list[bytes | str], dict[bytes | str, bytes | str]
    ]:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.reports)
            pipe.get(self.keys.version)
            pipe.zrangebyscore(self.keys.expiry, "-inf", repr(self._clock()))
            pipe.hgetall(self.keys.overrides)
            raw_reports, raw_version, expired, overrides = await pipe.execute()
        return raw_reports, raw_version, expired, overrides

    def _overrides(
        self, raw: dict[bytes | str, bytes | str], skipped: dict[str, str]
    ) -> tuple[dict[str, Drain], dict[str, AlertMark]]:
        drains: dict[str, Drain] = {}
        alerts: dict[str, AlertMark] = {}
        for raw_field, payload in raw.items():
            field = _text(raw_field)
            try:
                if field.startswith(_DRAIN):
                    drain = drain_from_bytes(payload)
                    drains[str(drain.scope)] = drain
                elif field.startswith(_ALERT):
                    alert = alert_from_bytes(payload)
                    alerts[alert.fingerprint] = alert
                else:
                    skipped[field] = "unknown override kind"
            except CatalogDecodeError as error:
                skipped[field] = str(error)
        return drains, alerts

    async def snapshot(self) -> CatalogSnapshot:
        raw_reports, raw_version, raw_expired, raw_overrides = await self._call(
            "snapshot", self._read()
        )
        version = 0 if raw_version is None else _version(raw_version)
        if version is None:
            raise CatalogUnavailable(f"{self.keys.version} is not an integer: {raw_version!r}")
        expired = {_text(c) for c in raw_expired}
        reports: dict[str, ClusterReport] = {}
        decoded: dict[str, tuple[bytes | str, ClusterReport]] = {}
        skipped: dict[str, str] = {}
        for raw_cluster, payload in raw_reports.items():
            cluster = _text(raw_cluster)
            if cluster in expired:
                continue
            cached = self._decoded.get(cluster)
            if cached is not None and cached[0] == payload:
                report = cached[1]
            else:
                try:
                    report = report_from_bytes(payload)
                    if report.cluster != cluster:
                        raise CatalogDecodeError(
                            [f"cluster: report of {report.cluster!r} stored under {cluster!r}"]
                        )
                except CatalogDecodeError as error:
                    skipped[cluster] = str(error)
                    continue
            reports[cluster] = report
            decoded[cluster] = (payload, report)
        self._decoded = decoded
        drains, alerts = self._overrides(raw_overrides, skipped)
        self._note_skipped(skipped)
        return CatalogSnapshot(
            MappingProxyType(reports),
            version,
            drains=MappingProxyType(drains),
            alerts=MappingProxyType(alerts),
        )

    def _note_skipped(self, skipped: dict[str, str]) -> None:
        for cluster, reason in skipped.items():
            if self._skipped.get(cluster) != reason:
                log.warning("catalog entry %r skipped: %s", cluster, reason)
        self._skipped = MappingProxyType(skipped)

    async def subscribe(self) -> AsyncGenerator[int | None, None]:
        closing = self._closing_future()
        delay = self._resubscribe_min
        failed = False
        while not self._closed:
            subscription = Subscription(self._client, self.keys.channel)
            try:
                # After a failure, re-read a cluster's slot map: the channel's slot
                # may have a new master (a promoted replica).
                await subscription.start(refresh=failed)
                pinged = False
                while not self._closed:
                    message = await self._receive(subscription, closing)
                    if message is None:
                        if self._closed:
                            return
                        if pinged:
                            raise RedisConnectionError("subscription did not answer PING")
                        await subscription.ping()
                        pinged = True
                        continue
                    pinged = False
                    if message["type"] == "subscribe":
                        # The first subscription, or redis-py resubscribed after a reconnect.
                        delay = self._resubscribe_min
                        failed = False
                        yield None
                    elif message["type"] == "message":
                        version = _version(message["data"])
                        if version is not None:
                            yield version
            except REDIS_ERRORS as error:
                failed = True
                if not self._closed:
                    log.warning("catalog subscription lost, retrying in %.1fs: %s", delay, error)
            finally:
                await subscription.aclose()
            await asyncio.wait([closing], timeout=delay)
            delay = min(delay * 2, self._resubscribe_max)

    def _closing_future(self) -> asyncio.Future[None]:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_future()
            if self._closed:
                self._closing.set_result(None)
        return self._closing

    async def _receive(
        self, subscription: Subscription, closing: asyncio.Future[None]
    ) -> dict[str, Any] | None:
        """The next message; None after `keepalive` seconds of silence or on close.

        The read runs in a task that `close()` interrupts by cancelling it; closing
        the connection under a pending read instead would make redis-py reconnect.
        """
        read = asyncio.ensure_future(subscription.get_message(self._keepalive))
        waiting: list[asyncio.Future[Any]] = [read, closing]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not read.done():
                read.cancel()
                await asyncio.wait([read])
            if not read.cancelled():
                read.exception()  # retrieved here even when we are being cancelled
        if read.cancelled():
            return None
        message: dict[str, Any] | None = read.result()
        return message

    async def close(self) -> None:
        """End subscriptions; close the client if this catalog owns it."""
        if self._closed:
            return
        self._closed = True
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)
        if self._owns_client:
            await self._client.aclose()
