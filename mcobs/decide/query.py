"""Query parameters of the events API -> an `EventQuery`, with every problem at once (pure)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from mcobs.decide.events import DEFAULT_LIMIT, MAX_LIMIT, EventQuery, parse_stream_id
from mcobs.model import ServiceKey
from mcobs.notify.event import EVENT_TYPES, parse_time

_LABEL: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_K8S_NAME: Final = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")

PAGE_PARAMS: Final = ("type", "cluster", "service", "since", "until", "limit", "cursor")
STREAM_PARAMS: Final = ("type", "cluster", "service", "last_event_id")


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    query: EventQuery
    problems: tuple[str, ...]
    last_event_id: str | None = None


def parse_moment(value: str) -> datetime | None:
    """RFC 3339 with a zone, or Unix seconds -> aware UTC; None when it is neither."""
    try:
        seconds = float(value)
    except ValueError:
        return parse_time(value)
    if not math.isfinite(seconds) or not 0 <= seconds < 253402300800:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _single(name: str, values: list[str], problems: list[str]) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        problems.append(f"{name}: given {len(values)} times; give it once")
    return values[-1]


def _types(values: list[str], problems: list[str]) -> frozenset[str]:
    wanted = {t.strip() for v in values for t in v.split(",") if t.strip()}
    unknown = sorted(wanted - EVENT_TYPES.keys())
    if unknown:
        problems.append(
            f"type: unknown event type(s) {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)})"
        )
    return frozenset(wanted & EVENT_TYPES.keys())


def _service(value: str, problems: list[str]) -> ServiceKey | None:
    namespace, slash, name = value.partition("/")
    if not slash or not _LABEL.fullmatch(namespace) or not _K8S_NAME.fullmatch(name):
        problems.append(f"service: must be <namespace>/<name>, got {value!r}")
        return None
    return ServiceKey(namespace, name)


def parse_event_query(
    params: Iterable[tuple[str, str]], *, allowed: Iterable[str] = PAGE_PARAMS
) -> ParsedQuery:
    """Validate query parameters (repeatable ones may repeat; `type` also takes commas)."""
    known = tuple(allowed)
    given: dict[str, list[str]] = defaultdict(list)
    for name, value in params:
        given[name].append(value)
    problems: list[str] = []
    for name in sorted(given.keys() - set(known)):
        problems.append(f"{name}: unknown parameter (known: {', '.join(known)})")

    types = _types(given.get("type", []), problems)
    cluster = _single("cluster", given.get("cluster", []), problems)
    if cluster is not None and not _LABEL.fullmatch(cluster):
        problems.append(f"cluster: must be a cluster name (a DNS label), got {cluster!r}")
        cluster = None
    raw_service = _single("service", given.get("service", []), problems)
    service = _service(raw_service, problems) if raw_service is not None else None

    moments: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        raw = _single(name, given.get(name, []), problems)
        moments[name] = None if raw is None else parse_moment(raw)
        if raw is not None and moments[name] is None:
            problems.append(f"{name}: must be RFC 3339 with a zone or Unix seconds, got {raw!r}")
    since, until = moments["since"], moments["until"]
    if since is not None and until is not None and since >= until:
        problems.append("since: must be before until")

    limit = DEFAULT_LIMIT
    raw_limit = _single("limit", given.get("limit", []), problems)
    if raw_limit is not None:
        if (raw_limit.isascii() and raw_limit.isdigit()) and 1 <= int(raw_limit) <= MAX_LIMIT:
            limit = int(raw_limit)
        else:
            problems.append(
                f"limit: must be a whole number from 1 to {MAX_LIMIT}, got {raw_limit!r}"
            )

    cursor = _single("cursor", given.get("cursor", []), problems)
    if cursor is not None and parse_stream_id(cursor) is None:
        problems.append(f"cursor: must be a next_cursor from an earlier page, got {cursor!r}")
        cursor = None

    query = EventQuery(types, cluster, service, since, until, cursor, limit)
    last = _single("last_event_id", given.get("last_event_id", []), problems)
    return ParsedQuery(query, tuple(problems), last)
