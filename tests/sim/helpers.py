"""Small helpers for the simulator's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `check()` holds, polling; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)
