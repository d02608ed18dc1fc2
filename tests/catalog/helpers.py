"""Bounded waiting for the catalog tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable


async def wait_until(condition: Callable[[], bool], within: float = 1.0) -> None:
    """Wait until `condition()` holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.005)


async def next_change(changes: AsyncIterator[int | None], within: float = 1.0) -> int | None:
    """The next item of a subscription; fail after `within` seconds."""
    return await asyncio.wait_for(anext(changes), within)
