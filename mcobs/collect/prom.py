"""Per-cluster Prometheus signals through prometheus-api-client.

The client is synchronous (requests), so each sweep's queries run in a worker
thread from a bounded pool shared by every cluster. A query that fails or
times out yields a signal without a value and the reason, never an exception.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mcobs.model import Signal


@dataclass(frozen=True, slots=True)
class SignalQuery:
    name: str
    query: str


def _short(error: BaseException) -> str:
    text = type(error).__name__
    lowered = str(error).lower()
    if "timed out" in lowered or "timeout" in lowered:
        return "timed out"
    if "connection" in lowered and ("refused" in lowered or "failed" in lowered):
        return "cannot connect"
    if "status code" in lowered or "http status" in lowered:
        return f"{text}: {str(error)[:120]}"
    return text


def _first_value(result: Any) -> float | None:
    """The first sample of a query result (vector or scalar), or None."""
    if not isinstance(result, list) or not result:
        return None
    first = result[0]
    if isinstance(first, dict):
        sample = first.get("value")
        return float(sample[1]) if isinstance(sample, list) and len(sample) == 2 else None
    return float(result[1]) if len(result) == 2 else None


class DeadlineSession(requests.Session):
    """A requests session whose every request finishes within `total` seconds.

    requests' own timeout bounds each socket read, so a server that trickles
    its answer a byte at a time would hold a worker thread forever.
    """

    def __init__(self, total: float) -> None:
        super().__init__()
        self.total = total

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.total
        kwargs["stream"] = True
        response = super().request(method, url, *args, **kwargs)
        body = bytearray()
        try:
            for chunk in response.iter_content(65536):
                body += chunk
                if time.monotonic() > deadline:
                    raise requests.Timeout(f"no complete answer within {self.total:g}s (timed out)")
        finally:
            response.close()
        response._content = bytes(body)
        return response


def _pool_options() -> dict[str, Any]:
    """urllib3-future (grafana-client's niquests installs it in urllib3's place) starts a
    thread per connection pool to watch idle connections: with a Prometheus per cluster,
    a thousand threads. Plain urllib3 has neither the threads nor the option."""
    parameters = inspect.signature(urllib3.HTTPConnectionPool.__init__).parameters
    return {"background_watch_delay": None} if "background_watch_delay" in parameters else {}


def _environ_ca_bundle() -> str | None:
    """The CA bundle requests would take from the environment."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


class ThreadlessAdapter(HTTPAdapter):
    """requests' adapter without urllib3-future's per-pool watcher thread."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs, **_pool_options())


class PrometheusSignals:
    def __init__(
        self, url: str, queries: Sequence[SignalQuery], timeout: float, executor: Executor
    ) -> None:
        # No client-side retries: a sweep that fails is retried by the next sweep, and
        # retrying inside one sweep would only delay noticing a dead Prometheus.
        self._session = DeadlineSession(timeout)
        self._client = PrometheusConnect(
            url=url.rstrip("/"), session=self._session, retry=Retry(total=0), timeout=timeout
        )
        self._session.mount(self._client.url, ThreadlessAdapter(max_retries=Retry(total=0)))
        # requests reads proxy and CA settings from the environment on every request,
        # a third of a query's cost at a thousand clusters: read them once instead.
        self._session.proxies = requests.utils.get_environ_proxies(self._client.url)
        self._session.verify = _environ_ca_bundle() or True
        self._session.trust_env = False
        self._queries = tuple(queries)
        self._timeout = timeout
        self._executor = executor

    def _read_one(self, query: SignalQuery) -> Signal:
        try:
            result = self._client.custom_query(query.query, timeout=self._timeout)
            value = _first_value(result)
        except Exception as error:  # the client raises many types; all mean "no value"
            return Signal(query.name, None, _short(error))
        if value is None:
            return Signal(query.name, None, "query returned no samples")
        if math.isnan(value) or math.isinf(value):
            return Signal(query.name, None, f"query returned {value}")
        return Signal(query.name, value)

    def close(self) -> None:
        self._session.close()

    async def read(self) -> tuple[Signal, ...]:
        """The configured cluster signals."""
        return await self.read_queries(self._queries)

    async def read_queries(self, queries: Sequence[SignalQuery]) -> tuple[Signal, ...]:
        """Any queries (per-service signals), in one worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: tuple(self._read_one(q) for q in queries)
        )
