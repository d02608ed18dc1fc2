"""One running task per owned cluster: what a hub plugs into `ShardManager.on_change`.

    tasks = OwnedTasks(lambda name: collectors.get(name))   # a fresh collector per name
    manager.on_change = tasks.update
    ...
    await tasks.stop()

`update(owned)` starts `start(name).run()` for every newly owned cluster and
cancels the task of every cluster that moved away; it is synchronous (the
manager calls it from its own task), so a helper task sees each cancelled one
to its end and `stop()` waits for them all. A stopping runner is told twice:
`close()` first, which its loops check at every turn, then a cancellation,
repeated until the task ends. Both are needed: on Python 3.11 a cancellation
that meets a time limit can vanish (`asyncio.wait_for`, aiohttp's timeouts),
and repeating it does not reach the children of a `TaskGroup` inside the
runner (asyncio cancels those once). A runner that shrugged it off would keep
collecting a cluster another replica now owns, and `stop()` would never
return. `start` should
build a fresh runner each time: a cluster that comes back after a while must
not resume from stale state. A runner that fails is logged and forgotten; its
cluster is started again at the next `update` that still lists it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Final, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

RECANCEL_EVERY: Final = 0.2


async def cancel_until_done(task: asyncio.Task[None], every: float = RECANCEL_EVERY) -> None:
    """Cancel `task`, again every `every` seconds, until it has ended."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=every)


class Runner(Protocol):
    async def run(self) -> None: ...

    def close(self) -> None:
        """Stop at the next turn of every loop, even if a cancellation is lost."""


R = TypeVar("R", bound=Runner)


class OwnedTasks(Generic[R]):
    def __init__(self, start: Callable[[str], R | None], *, kind: str = "collector") -> None:
        self._start = start
        self._kind = kind
        self._running: dict[str, tuple[R, asyncio.Task[None]]] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> Mapping[str, R]:
        """cluster -> its runner, for the clusters with a live task."""
        return {name: runner for name, (runner, task) in self._running.items() if not task.done()}

    def update(self, owned: frozenset[str]) -> None:
        for name in sorted(self._running.keys() - owned):
            self._stop_later(*self._running.pop(name))
            log.info("%s %s stopping: no longer owned here", self._kind, name)
        for name in sorted(owned):
            current = self._running.get(name)
            if current is not None and not current[1].done():
                continue
            runner = self._start(name)
            if runner is None:
                log.warning("%s %s: owned but not configured here", self._kind, name)
                continue
            task = asyncio.create_task(runner.run(), name=f"{self._kind} {name}")
            task.add_done_callback(self._finished)
            self._running[name] = (runner, task)

    def _stop_later(self, runner: R, task: asyncio.Task[None]) -> None:
        runner.close()
        stopping = asyncio.create_task(cancel_until_done(task), name=f"stop {task.get_name()}")
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())

    async def stop(self) -> None:
        """Cancel every task and wait for them."""
        for runner, task in self._running.values():
            self._stop_later(runner, task)
        self._running.clear()
        await asyncio.gather(*self._stopping, return_exceptions=True)
        self._stopping.clear()
