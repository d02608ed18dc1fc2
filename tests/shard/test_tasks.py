"""OwnedTasks: a task per owned cluster, started and stopped as ownership changes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mcobs.shard.tasks import OwnedTasks, cancel_until_done


class Runner:
    def __init__(self, name: str, log: list[str], *, fail: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail = fail

    async def run(self) -> None:
        self.log.append(f"start {self.name}")
        try:
            await asyncio.sleep(0)
            if self.fail:
                raise RuntimeError("boom")
            await asyncio.Event().wait()
        finally:
            self.log.append(f"end {self.name}")

    def close(self) -> None:
        self.log.append(f"close {self.name}")


async def test_tasks_follow_ownership_and_stop_waits_for_them() -> None:
    log: list[str] = []
    built: list[str] = []

    def start(name: str) -> Runner | None:
        if name == "unknown":
            return None
        built.append(name)
        return Runner(name, log)

    tasks = OwnedTasks(start)
    tasks.update(frozenset({"a", "b", "unknown"}))
    await asyncio.sleep(0.01)
    assert set(tasks.running) == {"a", "b"}
    tasks.update(frozenset({"b", "c"}))
    await asyncio.sleep(0.01)
    assert set(tasks.running) == {"b", "c"}
    assert "end a" in log and "end b" not in log
    tasks.update(frozenset({"a", "b", "c"}))  # a comes back: a fresh runner
    assert built == ["a", "b", "c", "a"]
    await tasks.stop()
    assert tasks.running == {}
    assert sorted(x for x in log if x.startswith("end")) == ["end a", "end a", "end b", "end c"]
    closed = sorted(x for x in log if x.startswith("close"))
    assert closed == ["close a", "close a", "close b", "close c"]


async def test_a_failed_runner_is_logged_and_started_again_at_the_next_update(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    fail = [True]

    def start(name: str) -> Runner:
        return Runner(name, log, fail=fail.pop() if fail else False)

    tasks = OwnedTasks(start)
    tasks.update(frozenset({"a"}))
    await asyncio.sleep(0.01)
    assert tasks.running == {}
    assert "collector a stopped: RuntimeError('boom')" in caplog.text
    tasks.update(frozenset({"a"}))
    await asyncio.sleep(0.01)
    assert set(tasks.running) == {"a"}
    await tasks.stop()


async def test_a_swallowed_cancellation_is_repeated() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what wait_for does on 3.11 now and then

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_done(task, every=0.01), 1)
    assert task.cancelled() and swallowed == 1
    with contextlib.suppress(asyncio.CancelledError):
        await task


class SwallowsInsideTaskGroup:
    """A runner whose TaskGroup child loses its one cancellation, as aiohttp's timeouts
    can on 3.11: only `close()` reaches it."""

    def __init__(self) -> None:
        self.closed = False
        self.turns = 0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._loop())

    async def _loop(self) -> None:
        while not self.closed:
            self.turns += 1
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)
            task = asyncio.current_task()
            while task is not None and task.uncancel():
                pass

    def close(self) -> None:
        self.closed = True


async def test_a_runner_that_loses_its_cancellations_still_stops_when_handed_over() -> None:
    runner = SwallowsInsideTaskGroup()
    tasks = OwnedTasks(lambda name: runner)
    tasks.update(frozenset({"a"}))
    await asyncio.sleep(0.05)
    assert runner.turns > 0
    tasks.update(frozenset())  # another replica owns "a" now
    stopping = asyncio.create_task(tasks.stop())
    done, _ = await asyncio.wait([stopping], timeout=2)
    runner.close()  # lets the test end either way
    await stopping
    assert done, "the handed-over runner kept running"
    turns = runner.turns
    await asyncio.sleep(0.05)
    assert runner.turns == turns and tasks.running == {}
