"""`mcobs` (e.g. `serve`) plus one sampler thread that counts the event loop's asyncio tasks.

    python -m tests.soak.instrumented --tasks-file FILE --every 10 serve --config C

mcobs exposes no task count (`/metrics` has no process or asyncio metrics), and
attaching py-spy every few seconds is heavy; so the soak starts the real CLI entry point
(`mcobs.cli.main`) with an event-loop policy that remembers the loop `asyncio.run`
creates, and a daemon thread that every `--every` seconds schedules a tiny coroutine on
that loop (`run_coroutine_threadsafe`, the thread-safe way in) and appends one JSON line
to `--tasks-file`: `{"t": unix time, "tasks": len(asyncio.all_tasks()), "lag_ms": how
long the loop took to run it}`. Everything else is exactly `mcobs ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mcobs.cli import main as mcobs_main

_loops: list[asyncio.AbstractEventLoop] = []


class _RecordingPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        _loops.append(loop)
        return loop


async def _count() -> int:
    return len(asyncio.all_tasks())


def _sample(path: Path, every: float) -> None:
    while True:
        time.sleep(every)
        if not _loops or _loops[-1].is_closed():
            continue
        asked = time.monotonic()
        try:
            tasks = asyncio.run_coroutine_threadsafe(_count(), _loops[-1]).result(timeout=every)
        except Exception:  # the loop is stopping, or too busy to answer within `every`
            tasks = -1
        line = {"t": time.time(), "tasks": tasks, "lag_ms": (time.monotonic() - asked) * 1000}
        with path.open("a") as out:
            out.write(json.dumps(line) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.instrumented")
    parser.add_argument("--tasks-file", required=True, type=Path)
    parser.add_argument("--every", type=float, default=10.0)
    args, rest = parser.parse_known_args(argv)
    asyncio.set_event_loop_policy(_RecordingPolicy())
    threading.Thread(
        target=_sample, args=(args.tasks_file, args.every), name="task-sampler", daemon=True
    ).start()
    return mcobs_main(rest)


if __name__ == "__main__":
    sys.exit(main())
