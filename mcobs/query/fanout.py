"""Send one Prometheus API request to many clusters at once (aiohttp).

Each cluster gets its own request, bounded by the per-cluster timeout, and the
whole fan-out is bounded by an overall deadline (shortened by the request's own
`timeout`). At most `concurrency` requests are in flight; a cluster waiting for
its turn past the deadline is not asked. Every cluster ends as an `Answer` or a
`Failure`, never an exception.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

from mcobs.query.outcome import TIMEOUT, Failure, Outcome, classify
from mcobs.query.params import Form, number

Targets = Callable[[], Mapping[str, str]]
"""The clusters to query: name -> Prometheus base URL (`http://prom:9090`, or with a path)."""


@dataclass(frozen=True, slots=True)
class FanoutSettings:
    cluster_timeout: float = 15.0
    """Seconds for one cluster's answer."""
    deadline: float = 30.0
    """Seconds for the whole fan-out; a request's `timeout` parameter can shorten it."""
    concurrency: int = 64
    """Requests in flight at once."""

    def __post_init__(self) -> None:
        problems = []
        if not self.cluster_timeout > 0:
            problems.append(f"cluster_timeout must be positive, got {self.cluster_timeout}")
        if not self.deadline > 0:
            problems.append(f"deadline must be positive, got {self.deadline}")
        if self.concurrency < 1:
            problems.append(f"concurrency must be at least 1, got {self.concurrency}")
        if problems:
            raise ValueError("; ".join(problems))


def describe(error: BaseException) -> str:
    """A short description of a transport error."""
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, ConnectionRefusedError):
            return "cannot connect: connection refused"
        return f"cannot connect: {error.os_error.strerror or error.os_error}"
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection closed by the server"
    if isinstance(error, aiohttp.InvalidURL):
        return "invalid Prometheus URL"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def api_path(*parts: str) -> str:
    """`/api/v1/<parts>` with each part URL-quoted (label names in paths)."""
    return "/api/v1/" + "/".join(quote(p, safe="") for p in parts)


class Fanout:
    """Fans requests out to the clusters `targets` names, over one shared session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        targets: Targets,
        *,
        settings: FanoutSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._targets = targets
        self.settings = settings or FanoutSettings()
        self._clock = clock

    def now(self) -> float:
        """Wall-clock time: when an instant query without `time` runs."""
        return self._clock()

    def clusters(self) -> dict[str, str]:
        return dict(self._targets())

    async def run(
        self,
        method: str,
        path: str,
        forms: Mapping[str, Form],
        *,
        limit: float | None = None,
        send_timeout: bool = False,
    ) -> list[Outcome]:
        """Send `path` to every cluster of `forms` (its own parameters each), in form
        bodies for POST and URL queries for GET, within `limit` seconds (the request's own
        `timeout`; never past the configured deadline). `send_timeout` adds each cluster's
        time budget as the `timeout` parameter, so its Prometheus stops evaluating
        too. Outcomes come sorted by cluster name."""
        if not forms:
            return []
        urls = self.clusters()
        loop = asyncio.get_running_loop()
        budget = self.settings.deadline if limit is None else min(limit, self.settings.deadline)
        deadline = loop.time() + budget
        turns = asyncio.Semaphore(self.settings.concurrency)

        async def one(cluster: str, form: Form) -> Outcome:
            base = urls.get(cluster)
            if base is None:
                return Failure(cluster, "no Prometheus URL configured")
            try:
                async with asyncio.timeout_at(deadline):
                    await turns.acquire()
            except TimeoutError:
                return Failure(cluster, f"not asked: deadline of {budget:g}s reached", TIMEOUT)
            # Every cluster is told the same limit (so one timeout reads the same for
            # all), bounded by the time left before the overall deadline.
            nominal = min(self.settings.cluster_timeout, budget)
            try:
                allowed = max(0.001, min(self.settings.cluster_timeout, deadline - loop.time()))
                sent = (*form, ("timeout", number(round(allowed, 3)))) if send_timeout else form
                async with asyncio.timeout(allowed):
                    return await self._fetch(cluster, method, base.rstrip("/") + path, sent)
            except TimeoutError:
                return Failure(cluster, f"timed out after {nominal:.3g}s", TIMEOUT)
            except (aiohttp.ClientError, OSError) as exc:
                return Failure(cluster, describe(exc))
            finally:
                turns.release()

        ordered = sorted(forms.items())
        return list(await asyncio.gather(*(one(c, f) for c, f in ordered)))

    async def _fetch(self, cluster: str, method: str, url: str, form: Form) -> Outcome:
        if method == "POST":
            request = self._session.post(url, data=list(form))
        else:
            request = self._session.get(url, params=list(form))
        async with request as response:
            body = await response.read()
            return classify(cluster, response.status, body)
