"""The failover logic's decisions as Grafana annotations, sent in the background.

`Annotator.record(event)` is an event sink of `mcobs.decide.Decider` (like
`mcobs.metrics.DecisionRecorder.record`): it turns the event into an
annotation, puts it on a bounded queue and returns. A background task sends
them one by one through a worker thread, retries transient failures a few
times, and logs what it could not send. Nothing ever raises into the caller,
and a slow or absent Grafana never slows a decision.

Tags: always `mcobs` and the kind (`failover`, `recovery`, `last_resort`,
`last_resort_ended`, `cluster_state`, `drain`, `undrain`); then
`service:<namespace>/<name>` for service events, `cluster:<name>` for each
cluster involved (for a failover: each cluster that left the answer; for a
recovery: each that came back), and `state:<new state>` for cluster state
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mcobs.grafana.client import Grafana, GrafanaError
from mcobs.metrics.recorders import decision_kind
from mcobs.notify.event import Event, JsonValue

log = logging.getLogger(__name__)

TAG = "mcobs"
MAX_PENDING = 1000
ATTEMPTS = 3
RETRY_DELAY = 1.0
STOP_TIMEOUT = 5.0
MAX_CLUSTER_TAGS = 20
MAX_TEXT = 500


class AnnotationSink(Protocol):
    """Where annotations go (`mcobs.grafana.client.Grafana`); may block, may raise."""

    def add_annotation(self, *, time_ms: int, tags: list[str], text: str) -> object: ...


@dataclass(frozen=True, slots=True)
class Annotation:
    time_ms: int
    tags: tuple[str, ...]
    text: str


def _strings(value: JsonValue) -> list[str]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        return []
    return [v for v in value if isinstance(v, str)]


def _text(value: JsonValue) -> str:
    return value if isinstance(value, str) else "?"


def _moved(event: Event) -> tuple[list[str], str]:
    """The clusters a service failover moved, and `from -> to` for the text."""
    before, after = _strings(event.data.get("from")), _strings(event.data.get("to"))
    if event.data.get("active") is True:
        moved = [c for c in before if c not in after]
    else:
        moved = [c for c in after if c not in before]
    route = f"{', '.join(before) or '(none)'} -> {', '.join(after) or '(none)'}"
    return moved or sorted(set(before) | set(after)), route


def event_annotation(event: Event) -> Annotation:
    """The annotation of one decision: tagged `mcobs`, its kind, its service and clusters."""
    data = event.data
    kind = decision_kind(event)
    tags = [TAG, kind]
    clusters: list[str] = []
    if event.type.startswith("service."):
        service = f"{_text(data.get('namespace'))}/{_text(data.get('service'))}"
        tags.append(f"service:{service}")
        if event.type == "service.failover":
            clusters, route = _moved(event)
            text = f"{kind} of {service}: {route}"
        else:
            clusters = _strings(data.get("clusters"))
            text = f"{kind.replace('_', ' ')} for {service}: answering {', '.join(clusters)}"
    elif "cluster" in data:
        cluster = _text(data.get("cluster"))
        clusters = [cluster]
        if event.type == "cluster.state_changed":
            state = _text(data.get("to"))
            tags.append(f"state:{state}")
            text = f"cluster {cluster}: {_text(data.get('from'))} -> {state}"
        else:
            text = f"{kind} of cluster {cluster}"
    else:
        text = event.type
    tags += [f"cluster:{c}" for c in clusters[:MAX_CLUSTER_TAGS]]
    reasons = _strings(data.get("reasons")) or _strings([data.get("reason")])
    if reasons:
        text += " (" + "; ".join(reasons[:3]) + ")"
    time_ms = round(event.occurred_at.timestamp() * 1000)
    return Annotation(time_ms, tuple(tags), text[:MAX_TEXT])


def _retryable(error: Exception) -> bool:
    if isinstance(error, GrafanaError):
        return error.status == 0 or error.status == 429 or error.status >= 500
    return False


class Annotator:
    """Sends annotations to Grafana without ever blocking or failing its caller.

    `start()` the sender from the event loop, call `record(event)` from the
    event loop, and `await stop()` to flush what is pending (for at most
    `STOP_TIMEOUT` seconds) and end it.
    """

    def __init__(
        self,
        sink: AnnotationSink,
        *,
        max_pending: int = MAX_PENDING,
        attempts: int = ATTEMPTS,
        retry_delay: float = RETRY_DELAY,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self._sink = sink
        self._queue: asyncio.Queue[Annotation] = asyncio.Queue(max_pending)
        self._attempts = max(1, attempts)
        self._retry_delay = retry_delay
        self._on_stop = on_stop
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def record(self, event: Event) -> None:
        """Queue the annotation of one decision (an event sink of `mcobs.decide.Decider`)."""
        try:
            annotation = event_annotation(event)
        except Exception:  # a malformed event must not reach the decider
            log.exception("grafana annotations: cannot describe event %s", event.id)
            return
        self.annotate(annotation)

    def annotate(self, annotation: Annotation) -> None:
        """Queue one annotation; when the queue is full it is dropped (and counted)."""
        try:
            self._queue.put_nowait(annotation)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("grafana annotations: queue full, %d dropped so far", self.dropped)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="grafana annotator")

    async def stop(self, flush_for: float = STOP_TIMEOUT) -> None:
        """Send what is pending (for at most `flush_for` seconds), then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), flush_for)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue.qsize():
            log.warning("grafana annotations: %d not sent at stop", self._queue.qsize())
        if self._on_stop is not None:
            self._on_stop()
            self._on_stop = None

    async def _run(self) -> None:
        while True:
            annotation = await self._queue.get()
            try:
                await self._send(annotation)
            finally:
                self._queue.task_done()

    async def _send(self, annotation: Annotation) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                await asyncio.to_thread(
                    self._sink.add_annotation,
                    time_ms=annotation.time_ms,
                    tags=list(annotation.tags),
                    text=annotation.text,
                )
            except Exception as error:  # the sender must outlive any failure
                if attempt < self._attempts and _retryable(error):
                    await asyncio.sleep(self._retry_delay * attempt)
                    continue
                self.failed += 1
                log.warning("grafana annotation not sent (%s): %s", annotation.text, error)
                return
            self.sent += 1
            return


def grafana_annotator(
    url: str, token: str, *, max_pending: int = MAX_PENDING, retry_delay: float = RETRY_DELAY
) -> Annotator:
    """An `Annotator` posting to the Grafana at `url`; closes its HTTP session on stop."""
    grafana = Grafana(url, token)
    return Annotator(
        grafana, max_pending=max_pending, retry_delay=retry_delay, on_stop=grafana.close
    )
