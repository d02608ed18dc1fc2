"""Whether one simulated cluster answers: up, refusing connections, or hanging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal, TypeAlias

Mode: TypeAlias = Literal["up", "refuse", "hang"]
MODES: tuple[Mode, ...] = ("up", "refuse", "hang")


class Gate:
    """The availability of a cluster's servers and the streams to cut when it goes down."""

    __slots__ = ("_mode", "_released", "_streams")

    def __init__(self) -> None:
        self._mode: Mode = "up"
        self._released: asyncio.Event | None = None
        self._streams: set[Callable[[], None]] = set()

    @property
    def mode(self) -> Mode:
        return self._mode

    def set(self, mode: Mode) -> None:
        """Change the mode; leaving `hang` releases held requests, `refuse` cuts streams."""
        self._mode = mode
        if mode != "hang" and self._released is not None:
            self._released.set()
            self._released = None
        if mode == "refuse":
            self.cut_streams()

    def cut_streams(self) -> None:
        for cut in list(self._streams):
            cut()

    async def admit(self) -> bool:
        """Wait while the cluster hangs; then whether a request may be answered."""
        while self._mode == "hang":
            if self._released is None:
                self._released = asyncio.Event()
            await self._released.wait()
        return self._mode == "up"

    def add_stream(self, cut: Callable[[], None]) -> Callable[[], None]:
        """Register a long-lived response to end on outage; returns its deregistration."""
        self._streams.add(cut)
        return lambda: self._streams.discard(cut)

    @property
    def open_streams(self) -> int:
        return len(self._streams)
