"""The catalog in Redis (redis-py asyncio): the source of truth shared by replicas.

Key layout, with the default prefix `mcobs`:

    mcobs:{catalog}:reports   hash     cluster name -> report JSON (see `codec`)
    mcobs:{catalog}:seen      hash     cluster name -> time of its latest heartbeat
    mcobs:{catalog}:version   string   integer, INCR'ed by every change
    mcobs:{catalog}:expiry    zset     cluster name -> Unix deadline (only with `ttl`)
    mcobs:{catalog}:overrides hash     drain/<scope> or alert/<fingerprint> -> JSON
    mcobs:{catalog}:changes   channel  PUBLISHed after each change: a JSON array of the
                                       new version and the clusters it touched
                                       (SPUBLISHed on a Redis Cluster: sharded pub/sub)

Reading stays cheap with a thousand clusters because most writes are not
changes. A collector whose cluster did not change writes a heartbeat (one
field of `seen`), which bumps no version and wakes no reader; readers fold
the heartbeats into `observed_at` at their next reload. A real change is
announced with the clusters it touched, so a reader that heard every
version since its last reload reads back only those reports (one MULTI/EXEC:
HMGET plus the version, heartbeats, expiries and overrides) and decodes only
them. A reader that missed a version (a lost subscription, a reader that does
not subscribe, a Redis that restarted) reads everything, as it does every
`resync_after` seconds: the names in that MULTI/EXEC, then the reports in
chunks of `WHOLE_READ_CHUNK`, decoding only those whose bytes changed.

Every key carries the hash tag `{catalog}`, so on Redis Cluster the whole
catalog lives in one hash slot: `put` and `remove` stay single Lua scripts
(write + INCR + PUBLISH, atomic, so no reader sees half a report or a report
without its version).

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
import functools
import json
import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
WHOLE_READ_CHUNK = 100

# KEYS: reports, version, expiry, seen.
# ARGV: cluster, payload, now, deadline ("" = none), channel, PUBLISH or SPUBLISH.
_PUT: Final = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
local touched = {ARGV[1]}
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
for _, cluster in ipairs(expired) do
  redis.call('HDEL', KEYS[1], cluster)
  redis.call('HDEL', KEYS[4], cluster)
  redis.call('ZREM', KEYS[3], cluster)
  table.insert(touched, cluster)
end
local version = redis.call('INCR', KEYS[2])
table.insert(touched, 1, version)
redis.call(ARGV[6], ARGV[5], cjson.encode(touched))
return version
"""

# KEYS: reports, version, expiry, seen. ARGV: cluster, channel, PUBLISH or SPUBLISH.
_REMOVE: Final = """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local version = redis.call('INCR', KEYS[2])
redis.call(ARGV[3], ARGV[2], cjson.encode({version, ARGV[1]}))
return version
"""

# KEYS: reports, seen, expiry. ARGV: cluster, observed_at, deadline ("" = none).
# Returns 0 (and writes nothing) when the catalog has no report of the cluster.
_HEARTBEAT: Final = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local seen = redis.call('HGET', KEYS[2], ARGV[1])
if not seen or tonumber(seen) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
return 1
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
redis.call(ARGV[4], ARGV[3], cjson.encode({version}))
return version
"""
_DRAIN = "drain/"
_ALERT = "alert/"


@dataclass(slots=True)
class ReadCounts:
    """How snapshots read the reports (for tests and benchmarks)."""

    whole: int = 0
    partial: int = 0
    whole_after_gap: int = 0
    """Partial reads that found an unheard version and read everything again."""
    decoded: int = 0


@dataclass(frozen=True, slots=True)
class CatalogKeys:
    """The Redis names of one catalog (see the module docstring)."""

    reports: str
    version: str
    expiry: str
    channel: str
    overrides: str
    seen: str

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
            f"{base}:seen",
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


def announcement(data: object) -> tuple[int, tuple[str, ...]] | None:
    """A change message's version and the clusters it touched; None if unreadable."""
    if not isinstance(data, bytes | str):
        return None
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    if isinstance(parsed, int) and not isinstance(parsed, bool):
        return parsed, ()
    if not isinstance(parsed, list) or not parsed:
        return None
    version, *clusters = parsed
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    if not all(isinstance(c, str) for c in clusters):
        return None
    return version, tuple(clusters)


def _seen_times(raw: Mapping[bytes | str, bytes | str]) -> dict[str, float]:
    times: dict[str, float] = {}
    for cluster, value in raw.items():
        try:
            at = float(value)
        except ValueError:
            continue
        if math.isfinite(at):
            times[_text(cluster)] = at
    return times


@dataclass(slots=True)
class _Entry:
    """One cluster's stored report as last read: the raw payload and what it decoded to."""

    payload: bytes | str
    report: ClusterReport | None
    """None when the payload did not decode (skipped, see `problem`)."""
    problem: str = ""
    seen: float = 0.0
    served: ClusterReport | None = None
    """`report` with the latest heartbeat folded into `observed_at` (kept, so an
    unchanged cluster is the same object in every snapshot)."""


@dataclass(frozen=True, slots=True)
class _Read:
    """What one snapshot read back from Redis."""

    payloads: Mapping[str, bytes | str | None]
    version: int
    expired: frozenset[str]
    seen: Mapping[str, float]
    overrides: Mapping[bytes | str, bytes | str]
    whole: bool
    """`payloads` holds every report (else only the clusters asked for)."""


class RedisCatalog:
    """A `CatalogStore` in Redis.

    `client` (one server, a Sentinel master or a `RedisCluster`) is used as
    given (closed by `close()` only when `owns_client`); prefer `from_url`,
    which sets timeouts fit for failing fast. `ttl`: forget a
    cluster `ttl` seconds after its last `put` or heartbeat (None: never), judged by `clock`.
    `keepalive`: a silent subscription is PINGed after this many seconds and
    reconnected when the PING goes unanswered as long. `resync_after`: read every
    report again at least this often (by `clock`), which catches edits made
    behind the catalog's back (`redis-cli HDEL`) that announce nothing.
    `max_in_flight`: calls beyond this many at once wait their turn.
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
        resync_after: float = 60.0,
        max_in_flight: int = 32,
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
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._override = client.register_script(_OVERRIDE)
        self._entries: dict[str, _Entry] = {}
        self._entries_version: int | None = None
        """The version `_entries` is whole at; None: read everything next time."""
        self._resync_after = resync_after
        self._whole_at = -math.inf
        self._listeners = 0
        """Live subscriptions: while one listens, every change is on its way to `_heard`."""
        self._announced: dict[int, tuple[str, ...]] = {}
        """Versions heard on the subscription since then, and the clusters they touched."""
        self._skipped: Mapping[str, str] = MappingProxyType({})
        self.reads = ReadCounts()
        self._reading = asyncio.Lock()
        # A thousand collectors writing at once would exhaust redis-py's connection
        # pool (100 by default), which fails calls rather than queueing them.
        self._in_flight = asyncio.Semaphore(max_in_flight)
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
        resync_after: float = 60.0,
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
            resync_after=resync_after,
            owns_client=True,
        )

    @property
    def skipped(self) -> Mapping[str, str]:
        """Entries the last snapshot skipped: cluster field -> why it did not decode."""
        return self._skipped

    async def _call(
        self, what: str, operation: Callable[[], Awaitable[_T]], *, queue: bool = True
    ) -> _T:
        """Run one Redis operation; `queue=False` skips the line of writers (reads,
        which are one at a time already, must not wait behind a thousand writes)."""
        if self._closed:
            raise CatalogUnavailable("catalog is closed")
        try:
            if not queue:
                return await operation()
            async with self._in_flight:
                return await operation()
        except REDIS_ERRORS as error:
            raise CatalogUnavailable(f"redis {what} failed: {error}") from error

    def _deadline(self, now: float) -> str:
        return "" if self._ttl is None else repr(now + self._ttl)

    async def put(self, report: ClusterReport) -> None:
        payload = check_report(report)
        now = self._clock()
        keys = self.keys
        await self._call(
            "put",
            lambda: self._put(
                keys=[keys.reports, keys.version, keys.expiry, keys.seen],
                args=[
                    report.cluster,
                    payload,
                    repr(now),
                    self._deadline(now),
                    keys.channel,
                    self._publish,
                ],
            ),
        )

    async def heartbeat(self, cluster: str, observed_at: float) -> bool:
        keys = self.keys
        written = await self._call(
            "heartbeat",
            lambda: self._heartbeat(
                keys=[keys.reports, keys.seen, keys.expiry],
                args=[cluster, repr(observed_at), self._deadline(self._clock())],
            ),
        )
        return bool(written)

    async def remove(self, cluster: str) -> None:
        keys = self.keys
        await self._call(
            "remove",
            lambda: self._remove(
                keys=[keys.reports, keys.version, keys.expiry, keys.seen],
                args=[cluster, keys.channel, self._publish],
            ),
        )

    async def _write_override(self, field: str, payload: bytes) -> bool:
        keys = self.keys
        version = await self._call(
            "override",
            lambda: self._override(
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

    # -- reading ---------------------------------------------------------------

    async def _read(self, clusters: Sequence[str] | None) -> _Read:
        """One MULTI/EXEC: those clusters' reports (None: the names of all), plus the rest."""
        keys = self.keys
        async with self._client.pipeline(transaction=True) as pipe:
            if clusters is None:
                pipe.hkeys(keys.reports)
            elif clusters:
                pipe.hmget(keys.reports, list(clusters))
            pipe.get(keys.version)
            pipe.zrangebyscore(keys.expiry, "-inf", repr(self._clock()))
            pipe.hgetall(keys.seen)
            pipe.hgetall(keys.overrides)
            replies = await pipe.execute()
        payloads: dict[str, bytes | str | None] = {}
        if clusters is None:
            payloads = dict.fromkeys(map(_text, replies.pop(0)))
        elif clusters:
            payloads = dict(zip(clusters, replies.pop(0), strict=True))
        raw_version, raw_expired, raw_seen, overrides = replies
        version = 0 if raw_version is None else _version(raw_version)
        if version is None:
            raise CatalogUnavailable(f"{keys.version} is not an integer: {raw_version!r}")
        return _Read(
            payloads,
            version,
            frozenset(_text(c) for c in raw_expired),
            _seen_times(raw_seen),
            overrides,
            whole=clusters is None,
        )

    async def _hmget(self, clusters: list[str]) -> list[bytes | str | None]:
        values: list[bytes | str | None] = await self._client.hmget(self.keys.reports, clusters)
        return values

    async def _read_whole(self) -> _Read:
        """Every report: the names and the rest in one MULTI, then the reports in chunks,
        so no single reply is large enough to outlast the reply timeout (1,000 clusters
        are some 13 MB). A report rewritten meanwhile is announced and read again."""
        read = await self._call("snapshot", lambda: self._read(None), queue=False)
        names = list(read.payloads)
        payloads: dict[str, bytes | str | None] = {}
        for start in range(0, len(names), WHOLE_READ_CHUNK):
            chunk = names[start : start + WHOLE_READ_CHUNK]
            values = await self._call(
                "snapshot", functools.partial(self._hmget, chunk), queue=False
            )
            payloads.update(zip(chunk, values, strict=True))
        return replace(read, payloads=payloads)

    @staticmethod
    def _heard_through(base: int, heard: Mapping[int, object]) -> int | None:
        """The newest version heard after `base` with none missing in between (`base`
        if none was heard); None when some version in between was not heard."""
        newer = [v for v in heard if v > base]
        top = max(newer, default=base)
        return top if len(newer) == top - base else None

    async def snapshot(self) -> CatalogSnapshot:
        async with self._reading:  # one read at a time, so an older one never lands last
            base = self._entries_version
            if self._clock() - self._whole_at >= self._resync_after:
                base = None
            heard = dict(self._announced)  # what the subscription said before this read
            top = None if base is None else self._heard_through(base, heard)
            if base is None or top is None:
                read = await self._read_whole()
            else:
                touched = {c for v, cs in heard.items() if base < v <= top for c in cs}
                read = await self._call(
                    "snapshot", lambda: self._read(sorted(touched)), queue=False
                )
                # Versions after `top` are on their way on the subscription (it keeps
                # their order); without one listening, or if the counter went back (an
                # emptied Redis), nothing will bring them: read everything.
                if read.version < top or (read.version > top and not self._listeners):
                    self.reads.whole_after_gap += 1
                    read = await self._read_whole()
            version = self._apply(read, top)
            self._announced = {v: c for v, c in self._announced.items() if v > version}
            return self._snapshot(read, version)

    def _apply(self, read: _Read, top: int | None) -> int:
        """Fold a read into the entries; the version they are now whole at."""
        if read.whole:
            self.reads.whole += 1
            self._whole_at = self._clock()
            entries = {c: self._entries.get(c) for c in read.payloads}
        else:
            self.reads.partial += 1
            entries = dict(self._entries)
        for cluster, payload in read.payloads.items():
            if payload is None:
                entries.pop(cluster, None)
                continue
            entry = entries.get(cluster)
            if entry is None or entry.payload != payload:
                entries[cluster] = self._decode(cluster, payload)
                self.reads.decoded += 1
        self._entries = {c: e for c, e in entries.items() if e is not None}
        self._entries_version = read.version if read.whole or top is None else top
        return self._entries_version

    @staticmethod
    def _decode(cluster: str, payload: bytes | str) -> _Entry:
        try:
            report = report_from_bytes(payload)
            if report.cluster != cluster:
                raise CatalogDecodeError(
                    [f"cluster: report of {report.cluster!r} stored under {cluster!r}"]
                )
        except CatalogDecodeError as error:
            return _Entry(payload, None, str(error))
        return _Entry(payload, report)

    def _snapshot(self, read: _Read, version: int) -> CatalogSnapshot:
        reports: dict[str, ClusterReport] = {}
        skipped: dict[str, str] = {}
        for cluster, entry in self._entries.items():
            if entry.report is None:
                skipped[cluster] = entry.problem
                continue
            if cluster in read.expired:
                continue
            seen = read.seen.get(cluster, 0.0)
            if entry.served is None or entry.seen != seen:
                entry.seen = seen
                entry.served = (
                    replace(entry.report, observed_at=seen)
                    if seen > entry.report.observed_at
                    else entry.report
                )
            reports[cluster] = entry.served
        drains, alerts = self._overrides(read.overrides, skipped)
        self._note_skipped(skipped)
        return CatalogSnapshot(
            MappingProxyType(reports),
            version,
            drains=MappingProxyType(drains),
            alerts=MappingProxyType(alerts),
        )

    def _overrides(
        self, raw: Mapping[bytes | str, bytes | str], skipped: dict[str, str]
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

    def _note_skipped(self, skipped: dict[str, str]) -> None:
        for cluster, reason in skipped.items():
            if self._skipped.get(cluster) != reason:
                log.warning("catalog entry %r skipped: %s", cluster, reason)
        self._skipped = MappingProxyType(skipped)

    def _heard(self, data: object) -> int | None:
        """Note a change message for the next snapshot; its version, None if unreadable."""
        heard = announcement(data)
        if heard is None:
            return None
        version, clusters = heard
        self._announced[version] = clusters
        return version

    async def subscribe(self) -> AsyncGenerator[int | None, None]:
        closing = self._closing_future()
        delay = self._resubscribe_min
        failed = False
        while not self._closed:
            subscription = Subscription(self._client, self.keys.channel)
            live = False
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
                        self._entries_version = None  # changes may have gone unheard
                        if not live:
                            live = True
                            self._listeners += 1
                        yield None
                    elif message["type"] == "message":
                        version = self._heard(message["data"])
                        if version is not None:
                            yield version
            except REDIS_ERRORS as error:
                failed = True
                if not self._closed:
                    log.warning("catalog subscription lost, retrying in %.1fs: %s", delay, error)
            finally:
                if live:
                    self._listeners -= 1
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

        A message already read from the socket is returned at once. Otherwise the
        read runs in a task that `close()` interrupts by cancelling it; closing the
        connection under a pending read instead would make redis-py reconnect.
        """
        # Waiting costs a whole turn of the event loop, which takes tens of
        # milliseconds on a hub starting a thousand collectors: one message a turn
        # drained a few dozen announcements a second while hundreds arrived, and the
        # snapshot fell behind by a minute.
        buffered = await subscription.get_message(0.0)
        if buffered is not None:
            return buffered
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
