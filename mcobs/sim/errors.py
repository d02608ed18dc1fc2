"""Errors of the simulator's control operations, each carrying every reason found."""

from __future__ import annotations

from collections.abc import Iterable


class SimError(ValueError):
    """A control call the simulator refuses; the state is unchanged."""

    def __init__(self, reasons: str | Iterable[str]) -> None:
        self.reasons: tuple[str, ...] = (reasons,) if isinstance(reasons, str) else tuple(reasons)
        super().__init__("; ".join(self.reasons))


class SimNotFound(SimError):
    """The named cluster, service or node does not exist."""
