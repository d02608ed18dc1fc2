"""The event log: every decision, appended by the leader, read by anyone.

`RedisEventLog` keeps events in a Redis stream (`mcobs:{decide}:events`, one
entry per event, field `event` = its JSON, trimmed to about `maxlen` entries
with `MAXLEN ~`). Appends go through one Lua script that first checks the
writer's `Fence` against the lease (same holder, same token) and rejects a
stale leader with `StaleLeader`; in the same script it writes the decision's
facts (the baseline of the next decision, see `mcobs.decide.facts`). So an
event and the facts it explains are written together, or not at all.

Cursors are stream ids (`1714564800123-0`): opaque to clients, ordered, and
assigned by the log. `read` pages newest first: a page holds events strictly
older than its `cursor`, and `next_cursor` continues from the last entry it
looked at (None at the end of the log). A filtered page may hold fewer than
`limit` events when `scan_budget` entries were looked at without filling it;
keep following `next_cursor`. `follow` yields events oldest first, strictly
after a cursor, as they are appended (XREAD BLOCK), and `None` after every
`idle` seconds without one, so a caller can send keepalives and notice that
its client went away. `resume_point` turns an SSE `Last-Event-ID` (an event id
or a cursor) into a cursor to follow from.

`MemoryEventLog` is the same contract in memory, fenced by a `LeaseBoard`.
Any Redis or socket error becomes `EventLogUnavailable`.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar

from mcobs.decide.keys import DecideKeys
from mcobs.decide.lease import Fence, LeaseBoard
from mcobs.model import ServiceKey
from mcobs.notify.event import Event, EventError, decode_event, encode_event
from mcobs.redisconn import REDIS_ERRORS, AnyRedis
from mcobs.redisconn import connect as redis_connect
from mcobs.waiting import wait_event

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_MAXLEN: Final = 100_000
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
SCAN_BATCH: Final = 200
SCAN_BUDGET: Final = 10_000
CLOCK_SKEW_MS: Final = 60_000
"""How far apart the clocks of successive leaders (event times) may be."""
FOLLOW_COUNT: Final = 100
"""Most entries one XREAD of a follower brings in: bounds a follower's memory."""

STREAM_ID: Final = re.compile(r"^\d{1,20}-\d{1,20}$")
EVENT_ID: Final = re.compile(r"^evt_[0-9A-HJKMNP-TV-Z]{26}$")
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# KEYS: lease, events, facts.
# ARGV: holder, token, maxlen, n events, events..., n sets, (field, value)..., n dels, fields...
# Returns {1, id...} or, when the fence is not the lease's, {0, holder, token} as stored.
_APPEND: Final = """
local holder = redis.call('HGET', KEYS[1], 'holder')
local token = redis.call('HGET', KEYS[1], 'token')
if holder ~= ARGV[1] or token ~= ARGV[2] then
  return {0, holder or '', token or ''}
end
local out = {1}
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  out[#out + 1] = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[i])
  i = i + 1
end
local sets = tonumber(ARGV[i])
i = i + 1
for _ = 1, sets do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local dels = tonumber(ARGV[i])
i = i + 1
for _ = 1, dels do
  redis.call('HDEL', KEYS[3], ARGV[i])
  i = i + 1
end
return out
"""


class StaleLeader(Exception):
    """A write under a fence that is no longer the lease's: another replica leads."""

    def __init__(self, fence: Fence, holder: str | None, token: int | None) -> None:
        self.fence = fence
        self.holder = holder
        self.token = token
        now = f"held by {holder} with token {token}" if holder else "not held by anyone"
        super().__init__(
            f"stale leader: {fence.holder} wrote with token {fence.token}, but the lease is {now}"
        )


class EventLogUnavailable(Exception):
    """The log cannot be reached (or is closed)."""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    cursor: str
    """The stream id of the entry (page and resume from it)."""
    event: Event


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events a page holds. Empty `types` means every type."""

    types: frozenset[str] = frozenset()
    cluster: str | None = None
    """Events about this cluster: its own, and failovers and last resorts involving it."""
    service: ServiceKey | None = None
    since: datetime | None = None
    """Inclusive, by event time."""
    until: datetime | None = None
    """Exclusive, by event time."""
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    def matches(self, event: Event) -> bool:
        if self.types and event.type not in self.types:
            return False
        if self.since is not None and event.occurred_at < self.since:
            return False
        if self.until is not None and event.occurred_at >= self.until:
            return False
        data = event.data
        if self.service is not None and (
            data.get("namespace") != self.service.namespace
            or data.get("service") != self.service.name
        ):
            return False
        if self.cluster is not None:
            involved = [data.get("cluster")]
            for key in ("from", "to", "clusters", "failed"):
                value = data.get(key)
                if isinstance(value, tuple):
                    involved.extend(value)
            if self.cluster not in involved:
                return False
        return True


@dataclass(frozen=True, slots=True)
class EventPage:
    events: tuple[LoggedEvent, ...]
    """Newest first."""
    next_cursor: str | None
    """Pass as `cursor` for older events; None when the log has no more."""


class EventLog(Protocol):
    async def append(
        self, events: Sequence[Event], *, fence: Fence, facts: Mapping[str, str | None] = ...
    ) -> tuple[LoggedEvent, ...]:
        """Append `events` (in order) and apply `facts` changes (None deletes a field),
        atomically, if `fence` is the lease's; else raise `StaleLeader`."""
        ...

    async def load_facts(self) -> dict[str, str]:
        """Every facts field and its JSON."""
        ...

    async def read(self, query: EventQuery) -> EventPage: ...

    def follow(
        self, after: str | None = None, *, idle: float = 1.0
    ) -> AsyncGenerator[LoggedEvent | None, None]:
        """Events appended after cursor `after` (None: from now on), and None when idle."""
        ...

    async def resume_point(self, last_event_id: str) -> str:
        """The cursor to follow from after an SSE `Last-Event-ID` (an event id or a
        cursor). Raises ValueError when it is neither."""
        ...

    async def close(self) -> None: ...


# -- ids -------------------------------------------------------------------------


def parse_stream_id(value: str) -> tuple[int, int] | None:
    if not STREAM_ID.fullmatch(value):
        return None
    ms, seq = value.split("-")
    return int(ms), int(seq)


def event_id_ms(event_id: str) -> int | None:
    """The millisecond timestamp inside an `evt_` ULID, or None when it is not one."""
    if not EVENT_ID.fullmatch(event_id):
        return None
    value = 0
    for char in event_id[4:]:
        value = value * 32 + _CROCKFORD.index(char)
    return value >> 80


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


Entry = tuple[str, bytes | str]
"""(stream id, event JSON)."""

NO_FACTS: Final[Mapping[str, str | None]] = MappingProxyType({})


def _entries(raw: object) -> list[Entry]:
    """XRANGE-shaped replies ([(id, {field: value})...]) as (id, event JSON) pairs."""
    entries: list[Entry] = []
    if not isinstance(raw, list | tuple):
        return entries
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            continue
        raw_id, fields = item
        payload = fields.get(b"event", b"") if isinstance(fields, dict) else b""
        if isinstance(raw_id, bytes | str) and isinstance(payload, bytes | str):
            entries.append((_text(raw_id), payload))
    return entries


def _streams(raw: object) -> list[Entry]:
    """XREAD replies (RESP2 list of [stream, entries], or RESP3 dict) as entries."""
    if isinstance(raw, dict):
        return [e for entries in raw.values() for e in _entries(entries)]
    if not isinstance(raw, list | tuple):
        return []
    found: list[Entry] = []
    for item in raw:
        if isinstance(item, list | tuple) and len(item) == 2:
            found += _entries(item[1])
    return found


class _Scanner:
    """Paging and resuming over `_newest_first`, shared by both logs."""

    scan_budget: int = SCAN_BUDGET
    _warned: bool = False

    async def _newest_first(self, before: str | None, oldest: str, count: int) -> list[Entry]:
        """Up to `count` entries with ids < `before` (None: any) and >= `oldest`, newest first."""
        raise NotImplementedError

    def _decode(self, entry: Entry) -> LoggedEvent | None:
        cursor, payload = entry
        try:
            return LoggedEvent(cursor, decode_event(payload))
        except EventError as error:
            if not self._warned:
                log.warning("event log entry %s skipped (logged once): %s", cursor, error)
                self._warned = True
            return None

    async def read(self, query: EventQuery) -> EventPage:
        before = query.cursor
        # Event times come from the leaders' clocks, not Redis's: stop once events are
        # older than `since` by more than the leaders' clocks may disagree.
        floor = None
        if query.since is not None:
            floor = query.since - timedelta(milliseconds=CLOCK_SKEW_MS)
        found: list[LoggedEvent] = []
        scanned = 0
        while True:
            batch = await self._newest_first(before, "-", SCAN_BATCH)
            for entry in batch:
                scanned += 1
                before = entry[0]
                logged = self._decode(entry)
                if logged is None:
                    continue
                if floor is not None and logged.event.occurred_at < floor:
                    return EventPage(tuple(found), None)
                if query.matches(logged.event):
                    found.append(logged)
                    if len(found) >= query.limit:
                        return EventPage(tuple(found), before)
            if len(batch) < SCAN_BATCH:
                return EventPage(tuple(found), None)
            if scanned >= self.scan_budget:
                return EventPage(tuple(found), before)

    async def resume_point(self, last_event_id: str) -> str:
        if parse_stream_id(last_event_id) is not None:
            return last_event_id
        target = event_id_ms(last_event_id)
        if target is None:
            raise ValueError(f"not an event id or a cursor: {last_event_id!r}")
        before: str | None = None
        scanned = 0
        while scanned < self.scan_budget:
            batch = await self._newest_first(before, "-", SCAN_BATCH)
            for cursor, payload in batch:
                scanned += 1
                before = cursor
                logged = self._decode((cursor, payload))
                if logged is None:
                    continue
                if logged.event.id == last_event_id:
                    return cursor
                seen = event_id_ms(logged.event.id)
                if seen is not None and seen < target - CLOCK_SKEW_MS:
                    scanned = self.scan_budget
                    break
            if len(batch) < SCAN_BATCH:
                break
        # Not found (trimmed, or from another log): replay from around its time;
        # consumers de-duplicate by event id.
        return f"{max(0, target - CLOCK_SKEW_MS)}-0"


def _facts_args(facts: Mapping[str, str | None]) -> list[str]:
    sets = [(k, v) for k, v in sorted(facts.items()) if v is not None]
    dels = [k for k, v in sorted(facts.items()) if v is None]
    return [str(len(sets)), *(x for kv in sets for x in kv), str(len(dels)), *dels]


def connect(url: str, *, timeout: float = 2.0) -> AnyRedis:
    """A client fit for the lease and the log: fails fast, one immediate reconnect.

    Any URL `mcobs.redisconn.connect` takes (one server, `redis+cluster://`,
    `redis+sentinel://`). `timeout` bounds connecting and each reply; it must
    exceed a follower's `idle`.
    """
    return redis_connect(url, timeout=timeout)


class RedisEventLog(_Scanner):
    """The event log in a Redis stream; `client` is closed by `close()` only if `owns_client`."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        prefix: str = "mcobs",
        maxlen: int = DEFAULT_MAXLEN,
        scan_budget: int = SCAN_BUDGET,
        retry_max: float = 5.0,
        owns_client: bool = False,
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self.keys = DecideKeys.for_prefix(prefix)
        self.maxlen = maxlen
        self.scan_budget = scan_budget
        self._client = client
        self._owns_client = owns_client
        self._append = client.register_script(_APPEND)
        self._retry_max = retry_max
        self._closed = False

    async def _call(self, what: str, operation: Awaitable[_T]) -> _T:
        if self._closed:
            if asyncio.iscoroutine(operation):
                operation.close()
            raise EventLogUnavailable("event log is closed")
        try:
            return await operation
        except REDIS_ERRORS as error:
            raise EventLogUnavailable(f"redis {what} failed: {error}") from error

    async def append(
        self,
        events: Sequence[Event],
        *,
        fence: Fence,
        facts: Mapping[str, str | None] = NO_FACTS,
    ) -> tuple[LoggedEvent, ...]:
        payloads = [encode_event(e) for e in events]
        args: list[Any] = [fence.holder, str(fence.token), str(self.maxlen), str(len(payloads))]
        args += payloads
        args += _facts_args(facts)
        keys = [self.keys.lease, self.keys.events, self.keys.facts]
        reply = await self._call("append", self._append(keys=keys, args=args))
        if int(reply[0]) != 1:
            holder = _text(reply[1]) or None
            token = _text(reply[2])
            raise StaleLeader(
                fence, holder, int(token) if (token.isascii() and token.isdigit()) else None
            )
        ids = [_text(i) for i in reply[1:]]
        return tuple(LoggedEvent(i, e) for i, e in zip(ids, events, strict=True))

    async def load_facts(self) -> dict[str, str]:
        raw = await self._call("load facts", self._client.hgetall(self.keys.facts))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def _newest_first(self, before: str | None, oldest: str, count: int) -> list[Entry]:
        top = "+" if before is None else f"({before}"
        raw = await self._call(
            "read", self._client.xrevrange(self.keys.events, top, oldest, count=count)
        )
        return _entries(raw)

    async def _last_id(self) -> str:
        raw = await self._call("read", self._client.xrevrange(self.keys.events, "+", "-", count=1))
        entries = _entries(raw)
        return entries[0][0] if entries else "0-0"

    async def follow(
        self, after: str | None = None, *, idle: float = 1.0
    ) -> AsyncGenerator[LoggedEvent | None, None]:
        delay = 0.1
        last = after
        outage = False
        while not self._closed:
            try:
                if last is None:
                    last = await self._last_id()
                reply = await self._call(
                    "follow",
                    self._client.xread(
                        {self.keys.events: last}, count=FOLLOW_COUNT, block=int(idle * 1000)
                    ),
                )
            except EventLogUnavailable as error:
                if not outage and not self._closed:
                    log.warning("event log follower: %s; retrying", error)
                outage = True
                yield None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            if outage:
                log.info("event log follower: redis answers again")
            outage, delay = False, 0.1
            entries = _streams(reply)
            if not entries:
                yield None
                continue
            for entry in entries:
                last = entry[0]
                logged = self._decode(entry)
                if logged is not None:
                    yield logged

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()


def _key(entry: tuple[tuple[int, int], str, bytes]) -> tuple[int, int]:
    return entry[0]


class MemoryEventLog(_Scanner):
    """The event log in memory (demo, tests), fenced by the leases on `board`."""

    def __init__(
        self,
        board: LeaseBoard,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        scan_budget: int = SCAN_BUDGET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self.maxlen = maxlen
        self.scan_budget = scan_budget
        self._board = board
        self._clock = clock
        self._entries: deque[tuple[tuple[int, int], str, bytes]] = deque(maxlen=maxlen)
        self._facts: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogUnavailable("event log is closed")

    def _next_id(self) -> tuple[int, int]:
        ms = int(self._clock() * 1000)
        if self._entries:
            last_ms, last_seq = self._entries[-1][0]
            if ms <= last_ms:
                return last_ms, last_seq + 1
        return ms, 0

    async def append(
        self,
        events: Sequence[Event],
        *,
        fence: Fence,
        facts: Mapping[str, str | None] = NO_FACTS,
    ) -> tuple[LoggedEvent, ...]:
        self._check_open()
        if not self._board.check(fence):
            held = self._board.current()
            raise StaleLeader(fence, held.holder if held else None, held.token if held else None)
        logged = []
        for event in events:
            key = self._next_id()
            cursor = f"{key[0]}-{key[1]}"
            self._entries.append((key, cursor, encode_event(event)))
            logged.append(LoggedEvent(cursor, event))
        for field, value in facts.items():
            if value is None:
                self._facts.pop(field, None)
            else:
                self._facts[field] = value
        if logged:
            self._wake.set()
            self._wake = asyncio.Event()
        return tuple(logged)

    async def load_facts(self) -> dict[str, str]:
        self._check_open()
        return dict(self._facts)

    async def _newest_first(self, before: str | None, oldest: str, count: int) -> list[Entry]:
        self._check_open()
        entries = self._entries
        end = len(entries)
        if before is not None:
            bound = parse_stream_id(before)
            end = bisect.bisect_left(entries, bound, key=_key) if bound is not None else 0
        floor = parse_stream_id(oldest) if oldest != "-" else None
        start = bisect.bisect_left(entries, floor, key=_key) if floor is not None else 0
        picked = [entries[i] for i in range(end - 1, max(start, end - count) - 1, -1)]
        return [(cursor, payload) for _, cursor, payload in picked]

    async def follow(
        self, after: str | None = None, *, idle: float = 1.0
    ) -> AsyncGenerator[LoggedEvent | None, None]:
        self._check_open()
        last = parse_stream_id(after) if after is not None else None
        if last is None:
            last = self._entries[-1][0] if self._entries else (0, 0)
        while not self._closed:
            wake = self._wake
            entries = self._entries
            first = bisect.bisect_right(entries, last, key=_key)
            fresh = [entries[i] for i in range(first, min(len(entries), first + FOLLOW_COUNT))]
            if not fresh:
                try:
                    await wait_event(wake, idle)
                except TimeoutError:
                    yield None
                continue
            for key, cursor, payload in fresh:
                last = key
                logged = self._decode((cursor, payload))
                if logged is not None:
                    yield logged

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
