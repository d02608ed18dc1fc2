"""Per-service options from `mcobs.io/` annotations (pure).

A bad value never takes a Service out of DNS by surprise and is never used: the
option falls back to its default and the problem is reported in the API.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

PREFIX = "mcobs.io/"
GLOBAL = PREFIX + "global"
TTL = PREFIX + "ttl"
STRATEGY = PREFIX + "strategy"
MAX_ANSWERS = PREFIX + "max-answers"
FAILOVER_ORDER = PREFIX + "failover-order"
MIN_HEALTHY_PERCENT = PREFIX + "min-healthy-percent"
LAST_RESORT = PREFIX + "last-resort"
PROBE = PREFIX + "probe"
SIGNALS = PREFIX + "signals"

STRATEGIES = ("weighted", "failover", "geo", "all")
LAST_RESORTS = ("serve-all", "nxdomain", "servfail")
MAX_TTL = 86400
MAX_ANSWERS_LIMIT = 64

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0", ""})
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """An outside-in check of a service's load balancer addresses."""

    kind: str
    """`tcp`, `http` or `https`."""
    path: str = "/"
    port: str | None = None
    """A port name or number of the Service; None: its first port."""


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """A service's own options; None means: the configured default."""

    ttl: int | None = None
    strategy: str | None = None
    max_answers: int | None = None
    failover_order: tuple[str, ...] | None = None
    min_healthy_percent: float | None = None
    last_resort: str | None = None
    probe: ProbeSpec | None = None
    signals: tuple[str, ...] | None = None
    """Names of configured per-service signals to evaluate for this service."""


def is_exported(annotations: Mapping[str, str]) -> bool:
    """Whether `mcobs.io/global` asks for the Service to be exported."""
    return annotations.get(GLOBAL, "").strip().lower() in _TRUE


def mcobs_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """Only the `mcobs.io/` annotations of an object."""
    return {k: v for k, v in (annotations or {}).items() if k.startswith(PREFIX)}


def _whole(low: int, high: int) -> Callable[[str], int | None]:
    def parse(raw: str) -> int | None:
        return int(raw) if (raw.isascii() and raw.isdigit()) and low <= int(raw) <= high else None

    return parse


def _percent(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0 <= value <= 100 else None


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def parse(raw: str) -> str | None:
        return raw.lower() if raw.lower() in choices else None

    return parse


def _clusters(raw: str) -> tuple[str, ...] | None:
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    if not names or not all(_LABEL.fullmatch(n) for n in names) or len(set(names)) != len(names):
        return None
    return names


_PROBE = re.compile(r"^(tcp|http|https)(?::(/[^\s@]*))?(?:@([a-z0-9-]{1,15}|\d{1,5}))?$")
_SIGNAL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _probe(raw: str) -> ProbeSpec | None:
    """`tcp`, `http:/healthz`, `https:/ready@metrics` (probe the port named metrics)."""
    match = _PROBE.fullmatch(raw)
    if not match or (match.group(1) == "tcp" and match.group(2)):
        return None
    return ProbeSpec(match.group(1), match.group(2) or "/", match.group(3))


def _signal_names(raw: str) -> tuple[str, ...] | None:
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    return names if names and all(_SIGNAL_NAME.fullmatch(n) for n in names) else None


_PARSERS: dict[str, tuple[str, Callable[[str], object], str]] = {
    TTL: ("ttl", _whole(0, MAX_TTL), f"a whole number of seconds 0..{MAX_TTL}"),
    STRATEGY: ("strategy", _one_of(STRATEGIES), "one of " + ", ".join(STRATEGIES)),
    MAX_ANSWERS: (
        "max_answers",
        _whole(1, MAX_ANSWERS_LIMIT),
        f"a whole number 1..{MAX_ANSWERS_LIMIT}",
    ),
    FAILOVER_ORDER: ("failover_order", _clusters, "a comma-separated list of cluster names"),
    MIN_HEALTHY_PERCENT: ("min_healthy_percent", _percent, "a number 0..100"),
    LAST_RESORT: ("last_resort", _one_of(LAST_RESORTS), "one of " + ", ".join(LAST_RESORTS)),
    PROBE: ("probe", _probe, "tcp, http:/path or https:/path, optionally @port"),
    SIGNALS: ("signals", _signal_names, "a comma-separated list of signal names"),
}
KNOWN = frozenset({GLOBAL, *_PARSERS})


def parse_options(annotations: Mapping[str, str]) -> tuple[ServiceOptions, tuple[str, ...]]:
    """Options and every problem found, each naming its annotation."""
    problems: list[str] = []
    for key in sorted(set(annotations) - KNOWN):
        problems.append(f"{key}: unknown annotation, ignored")
    exported = annotations.get(GLOBAL, "").strip().lower()
    if exported not in _TRUE | _FALSE:
        problems.append(f"{GLOBAL}: {exported!r} is not true or false")
    values: dict[str, object] = {}
    for key, (field_name, parse, expected) in _PARSERS.items():
        if key not in annotations:
            continue
        raw = annotations[key].strip()
        value = parse(raw)
        if value is None:
            problems.append(f"{key}: {raw[:64]!r} is not {expected}; using the default")
        else:
            values[field_name] = value
    return ServiceOptions(**values), tuple(problems)  # type: ignore[arg-type]


def options_of(annotations: Mapping[str, str]) -> tuple[ServiceOptions, tuple[str, ...]]:
    """`parse_options`, worked out once per distinct set of annotations: a thousand
    clusters usually annotate a service alike, and plans and sweeps ask again and again."""
    return _parsed(frozenset(annotations.items()))


@functools.lru_cache(maxsize=4096)
def _parsed(annotations: frozenset[tuple[str, str]]) -> tuple[ServiceOptions, tuple[str, ...]]:
    return parse_options(dict(annotations))
