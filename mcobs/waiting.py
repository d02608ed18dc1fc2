"""Waiting for an event with a time limit, cancellably.

On Python 3.11 both `asyncio.wait_for(event.wait(), t)` and
`asyncio.timeout(t)` can swallow a cancellation that arrives just as the time
limit (or the event) fires, leaving a task that never stops. `asyncio.wait`
does no cancelling of its own, so a cancellation always gets through.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set or `seconds` pass; raises TimeoutError then."""
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        if not waiter.done():
            waiter.cancel()
    if not event.is_set():
        raise TimeoutError


def stop_if_cancelled(closed: bool = False) -> None:
    """Raise CancelledError when the current task was asked to stop, or when
    `closed` says its owner was closed (the stop that survives a lost cancellation).

    Python 3.11's timeouts (aiohttp's included) can turn a cancellation that
    coincides with a time limit into a TimeoutError, which a loop then handles
    like any timeout. The request stays recorded on the task, so loops call this
    once per round to stop anyway.
    """
    task = asyncio.current_task()
    if closed or (task is not None and task.cancelling()):
        raise asyncio.CancelledError
