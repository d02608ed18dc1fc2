"""Per-service options from `mcobs.io/` annotations (pure).

A bad value never takes a Service out of DNS by surprise and is never used: the
option falls back to its default and the problem is reported in the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "mcobs.io/"
GLOBAL = PREFIX + "global"
TTL = PREFIX + "ttl"

MAX_TTL = 86400
KNOWN = frozenset({GLOBAL, TTL})
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0", ""})


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    ttl: int | None = None
    """Answer TTL in seconds; None: the configured default."""


def is_exported(annotations: Mapping[str, str]) -> bool:
    """Whether `mcobs.io/global` asks for the Service to be exported."""
    return annotations.get(GLOBAL, "").strip().lower() in _TRUE


def mcobs_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """Only the `mcobs.io/` annotations of an object."""
    return {k: v for k, v in (annotations or {}).items() if k.startswith(PREFIX)}


def parse_options(annotations: Mapping[str, str]) -> tuple[ServiceOptions, tuple[str, ...]]:
    """Options and every problem found, each naming its annotation."""
    problems: list[str] = []
    for key in sorted(set(annotations) - KNOWN):
        problems.append(f"{key}: unknown annotation, ignored")
    exported = annotations.get(GLOBAL, "").strip().lower()
    if exported not in _TRUE | _FALSE:
        problems.append(f"{GLOBAL}: {exported!r} is not true or false")
    ttl: int | None = None
    if TTL in annotations:
        raw = annotations[TTL].strip()
        if raw.isdigit() and int(raw) <= MAX_TTL:
            ttl = int(raw)
        else:
            problems.append(f"{TTL}: {raw!r} is not a whole number of seconds 0..{MAX_TTL}")
    return ServiceOptions(ttl=ttl), tuple(problems)
