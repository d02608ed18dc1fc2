"""The hub keeps its long-lived objects out of the garbage collector's full passes."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from mcobs.heap import freeze_long_lived


async def test_long_lived_objects_are_frozen_soon_after_start_and_again_later() -> None:
    gc.unfreeze()
    held = [object() for _ in range(1000)]
    task = asyncio.create_task(freeze_long_lived(first_after=0.01, every=0.05))
    try:
        await asyncio.sleep(0.03)
        first = gc.get_freeze_count()
        assert first >= len(held)
        more = [[n] for n in range(1000)]  # later arrivals are frozen at the next round
        await asyncio.sleep(0.06)
        assert gc.get_freeze_count() >= first + len(more)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gc.unfreeze()
