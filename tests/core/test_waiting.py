import asyncio
import contextlib

import pytest

from mcobs.waiting import wait_event


async def test_returns_when_set_and_raises_on_timeout() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, event.set)
    await wait_event(event, 1.0)
    with pytest.raises(TimeoutError):
        await wait_event(asyncio.Event(), 0.01)


async def test_a_cancel_always_gets_through_even_at_the_deadline() -> None:
    # Cancel exactly when the time limit fires, many times: the waiting task must end.
    async def loop(event: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await wait_event(event, 0.001)

    for _ in range(200):
        task = asyncio.create_task(loop(asyncio.Event()))
        await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1.0)
