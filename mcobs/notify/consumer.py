"""A webhook consumer as the outbox uses it: resolved settings, secret decoded (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from mcobs.notify.event import EVENT_TYPES
from mcobs.notify.payloads import PayloadFormat
from mcobs.notify.retry import RetryPolicy
from mcobs.notify.signing import SigningKey

NAME: Final = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
"""Consumer names: safe in Redis keys, metric labels and URLs."""

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_RETRY: Final = RetryPolicy()


def check_url(url: str) -> list[str]:
    """Problems of a target URL: http(s), a host, no user:password, no fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return [f"not a valid URL: {error}"]
    problems = []
    if parts.scheme not in ("http", "https"):
        problems.append("must be an http:// or https:// URL")
    if not parts.hostname:
        problems.append("must name a host")
    if parts.username is not None or parts.password is not None:
        problems.append("must not carry user:password (put credentials in the secret)")
    if parts.fragment:
        problems.append("must not have a #fragment")
    if port == 0:
        problems.append("must not use port 0")
    return problems


def check_event_patterns(patterns: tuple[str, ...]) -> list[str]:
    """Problems of subscription patterns: `*`, `<prefix>.*` or a known event type."""
    problems = []
    prefixes = {name.split(".", 1)[0] for name in EVENT_TYPES}
    for pattern in patterns:
        if pattern == "*" or pattern in EVENT_TYPES:
            continue
        if pattern.endswith(".*") and pattern[:-2] in prefixes:
            continue
        problems.append(
            f"unknown event type {pattern!r} (known: *, {', '.join(EVENT_TYPES)}, "
            f"or a prefix such as cluster.*)"
        )
    return problems


def matches(patterns: tuple[str, ...], event_type: str) -> bool:
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    url: str = field(repr=False)
    """Kept out of reprs: a query string may hold a token. Show `host` instead."""
    key: SigningKey
    events: tuple[str, ...] = ("*",)
    format: PayloadFormat = PayloadFormat.STANDARD
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = DEFAULT_RETRY
    deny_private: bool = False
    external_url: str = ""
    """mcobs's own URL, for Alertmanager `externalURL` and `generatorURL`."""

    def __post_init__(self) -> None:
        problems = [] if NAME.fullmatch(self.name) else [f"name {self.name!r} is not a valid name"]
        problems += [f"url: {p}" for p in check_url(self.url)]
        problems += [f"events: {p}" for p in check_event_patterns(self.events)]
        if not self.timeout > 0:
            problems.append("timeout must be positive")
        if problems:
            raise ValueError(f"consumer {self.name!r}: " + "; ".join(problems))

    @property
    def host(self) -> str:
        """The target host (and port when given): safe to show, unlike the whole URL."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{parts.port}" if parts.port else host

    def wants(self, event_type: str) -> bool:
        return matches(self.events, event_type)
