"""Per-cluster Prometheus signals through prometheus-api-client.

The client is synchronous (requests), so each sweep's queries run in a worker
thread from a bounded pool shared by every cluster; the HTTP itself goes over
the hub's aiohttp session (`mcobs.collect.loophttp`), with a time limit on the
whole answer. A query that fails or times out yields a signal without a value
and the reason, never an exception.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from mcobs.collect.loophttp import LoopAdapter
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


def _environ_ca_bundle() -> str | None:
    """The CA bundle requests would take from the environment."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


class PrometheusSignals:
    def __init__(
        self,
        url: str,
        queries: Sequence[SignalQuery],
        timeout: float,
        executor: Executor,
        http: aiohttp.ClientSession,
    ) -> None:
        """`http`: the hub's aiohttp session, which carries the queries (`LoopAdapter`)."""
        self._session = requests.Session()
        self._adapter = LoopAdapter(http)
        # No client-side retries: a sweep that fails is retried by the next sweep, and
        # retrying inside one sweep would only delay noticing a dead Prometheus.
        self._client = PrometheusConnect(
            url=url.rstrip("/"), session=self._session, retry=Retry(total=0), timeout=timeout
        )
        for scheme in ("http://", "https://"):  # replaces the client's own adapter
            self._session.mount(scheme, self._adapter)
        self._session.adapters.pop(self._client.url, None)
        # requests reads proxy and CA settings from the environment on every request:
        # read them once instead.
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
        self._adapter.loop = loop
        return await loop.run_in_executor(
            self._executor, lambda: tuple(self._read_one(q) for q in queries)
        )
