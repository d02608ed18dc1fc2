"""A small asyncio transport for the Kubernetes API: GET, list and watch over aiohttp."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from mcobs.collect.credentials import KubeCredentials

MAX_LINE_BYTES = 8 * 2**20


class KubeError(Exception):
    """A request to a cluster's API failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Expired(KubeError):
    """The resourceVersion is too old (410 Gone): the caller must list again."""


KEEPALIVE_SECONDS = 60.0


def new_session() -> aiohttp.ClientSession:
    """A session for every cluster's API: no cap on connections in total.

    Each cluster holds three watch connections open for minutes; aiohttp's
    default cap (100) would make probes of the 34th cluster wait behind them.
    Idle connections are kept a minute (aiohttp's default is 15 s): a big
    fleet's stretched intervals (`mcobs.collect.pace`) would otherwise pay a
    new connection, and a TLS handshake, for every probe and PromQL query.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=0, limit_per_host=16, keepalive_timeout=KEEPALIVE_SECONDS
        ),
        read_bufsize=2**16,
        max_line_size=MAX_LINE_BYTES,
    )


def describe(error: BaseException) -> str:
    """A short, secret-free description of a transport error."""
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, ConnectionRefusedError):
            return "cannot connect: connection refused"
        return f"cannot connect: {error.os_error.strerror or error.os_error}"
    if isinstance(error, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return "connection closed by the server"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status}"
    if isinstance(error, KubeError):
        return str(error)
    return type(error).__name__


class KubeApi:
    def __init__(
        self, session: aiohttp.ClientSession, credentials: KubeCredentials, timeout: float
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connect_timeout = timeout

    @property
    def server(self) -> str:
        return self._credentials.server

    async def get_text(self, path: str) -> tuple[int, str]:
        """Status and body of a plain GET (used for /readyz)."""
        async with self._session.get(
            self.server + path,
            headers=self._credentials.headers(),
            ssl=self._credentials.ssl_context or True,
            timeout=self._timeout,
            allow_redirects=False,
        ) as response:
            return response.status, (await response.text())[:512]

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        async with self._session.get(
            self.server + path,
            params=params,
            headers={**self._credentials.headers(), "Accept": "application/json"},
            ssl=self._credentials.ssl_context or True,
            timeout=self._timeout,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            if response.status == 410:
                raise Expired("resourceVersion expired", 410)
            if response.status != 200:
                raise KubeError(f"GET {path}: HTTP {response.status}", response.status)
            try:
                return json.loads(body)
            except ValueError:
                raise KubeError(f"GET {path}: body is not JSON") from None

    async def watch(
        self, path: str, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events from `resource_version`; ends when the server closes the stream."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout, sock_read=timeout_seconds + 15
        )
        async with self._session.get(
            self.server + path,
            params=params,
            headers={**self._credentials.headers(), "Accept": "application/json"},
            ssl=self._credentials.ssl_context or True,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            if response.status == 410:
                raise Expired("resourceVersion expired", 410)
            if response.status != 200:
                raise KubeError(f"watch {path}: HTTP {response.status}", response.status)
            async for line in response.content:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    raise KubeError(f"watch {path}: event is not JSON") from None
                if not isinstance(event, dict):
                    raise KubeError(f"watch {path}: event is not an object")
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    code = status.get("code") if isinstance(status, dict) else None
                    if code == 410:
                        raise Expired("resourceVersion expired", 410)
                    raise KubeError(f"watch {path}: error event {code}", code)
                yield event
