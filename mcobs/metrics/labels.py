"""Label values that stay bounded whatever the caller passes."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

OTHER = "other"
_SAFE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class BoundedLabel:
    """Maps free-form values to a bounded set of label values.

    With `allowed`, anything outside it becomes `other`. Without it, the first
    `limit` distinct well-formed values (lower case, at most 32 characters) are
    kept as they are and later ones become `other`, so a bug or a hostile input
    can never grow a metric without bound.
    """

    def __init__(
        self, allowed: Iterable[str] | None = None, *, limit: int = 16, other: str = OTHER
    ) -> None:
        self._allowed = frozenset(allowed) if allowed is not None else None
        self._limit = limit
        self._other = other
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if self._allowed is not None:
            return value if value in self._allowed else self._other
        if value in self._seen:
            return value
        if not _SAFE.fullmatch(value):
            return self._other
        with self._lock:
            if len(self._seen) >= self._limit:
                return self._other
            self._seen.add(value)
        return value
