"""List, then watch, one kind of object, keeping a local copy up to date.

The copy is relisted when the watch's resourceVersion expires (410 Gone) and
after every reconnect, as client-go's reflector does. Objects that fail
conversion are dropped and counted, never kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import aiohttp

from mcobs.collect.convert import ObjectError, object_id
from mcobs.collect.kubeapi import Expired, KubeApi, KubeError, describe
from mcobs.waiting import stop_if_cancelled

T = TypeVar("T")
log = logging.getLogger(__name__)

WATCH_SECONDS = 300
BACKOFF_START = 0.5
BACKOFF_MAX = 5.0


class Reflector(Generic[T]):
    def __init__(
        self,
        *,
        api: KubeApi,
        path: str,
        convert: Callable[[Mapping[str, Any]], T],
        on_change: Callable[[], None],
        on_error: Callable[[str], None],
        label: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api = api
        self._path = path
        self._convert = convert
        self._on_change = on_change
        self._on_error = on_error
        self._label = label
        self._sleep = sleep
        self.items: dict[tuple[str, str], T] = {}
        self.synced = False
        self.listed_once = False
        """A list has succeeded since start: `items` is this cluster's, not just empty."""
        self.rejected = 0
        """Objects dropped because they could not be converted."""
        self._closed = False
        self._task: asyncio.Task[Any] | None = None

    def close(self) -> None:
        """Stop now, or at the next turn of the loop if the cancellation is lost."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()

    def _convert_or_none(self, obj: Any) -> tuple[tuple[str, str], T] | None:
        try:
            if not isinstance(obj, Mapping):
                raise ObjectError("object is not a JSON object")
            return object_id(obj), self._convert(obj)
        except (ObjectError, ValueError, TypeError, KeyError, AttributeError) as error:
            self.rejected += 1
            log.warning("%s: dropped a malformed object: %s", self._label, error)
            return None

    async def _list(self) -> str:
        body = await self._api.get_json(self._path)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise KubeError(f"list {self._path}: not a list")
        items: dict[tuple[str, str], T] = {}
        for obj in body["items"]:
            converted = self._convert_or_none(obj)
            if converted:
                items[converted[0]] = converted[1]
        self.items = items
        self.synced = True
        self.listed_once = True
        self._on_change()
        return str((body.get("metadata") or {}).get("resourceVersion") or "0")

    def _apply(self, event: dict[str, Any]) -> str | None:
        kind = event.get("type")
        obj = event.get("object")
        version = None
        if isinstance(obj, Mapping):
            version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            return str(version) if version else None
        converted = self._convert_or_none(obj)
        if converted is None:
            return str(version) if version else None
        key, value = converted
        if kind in ("ADDED", "MODIFIED"):
            self.items[key] = value
        elif kind == "DELETED":
            self.items.pop(key, None)
        else:
            return None
        self._on_change()
        return str(version) if version else None

    async def run(self) -> None:
        self._task = asyncio.current_task()
        backoff = BACKOFF_START
        while True:
            stop_if_cancelled(self._closed)
            try:
                version = await self._list()
                backoff = BACKOFF_START
                while True:
                    stop_if_cancelled(self._closed)
                    async for event in self._api.watch(self._path, version, WATCH_SECONDS):
                        version = self._apply(event) or version
            except Expired:
                log.info("%s: resourceVersion expired, listing again", self._label)
                continue
            except (KubeError, aiohttp.ClientError, TimeoutError, OSError) as error:
                message = f"{self._label}: {describe(error)}"
                if self.synced:
                    log.warning("%s; will list again", message)
                self.synced = False
                self._on_error(message)
            await self._sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
