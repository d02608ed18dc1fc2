"""Keeps the garbage collector's full passes short in a hub holding a big fleet.

A hub with a thousand clusters holds millions of long-lived objects (the
catalog's reports, the plans, the watches' items). CPython's full collection
walks all of them, a third of a second at a time and several times a minute,
which stalls the event loop. `gc.freeze()` moves what exists into a generation
the collector skips; reference counting still frees those objects as usual,
only a reference cycle among them would wait (they hold almost none).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Final

log = logging.getLogger(__name__)

FIRST_FREEZE_AFTER: Final = 30.0
"""Seconds after start: the start-up's objects are in place by then."""
FREEZE_EVERY: Final = 600.0


async def freeze_long_lived(
    first_after: float = FIRST_FREEZE_AFTER, every: float = FREEZE_EVERY
) -> None:
    await asyncio.sleep(first_after)
    while True:
        gc.freeze()
        log.debug("%d objects kept out of full garbage collections", gc.get_freeze_count())
        await asyncio.sleep(every)
