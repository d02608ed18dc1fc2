"""One HTTP attempt (aiohttp): POST, a timeout, redirects never followed, SSRF guard.

Each consumer gets its own session. With `deny_private`, its connector
resolves names through `GuardedResolver`, which refuses the host when any
address it resolves to is denied (see `ssrf`); the connection then uses
exactly the addresses that were checked, so a DNS answer cannot change
between check and connect. IP literals are checked before the request.
The result says why an attempt failed without quoting the URL (a query
string may hold a token) or anything from the request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from mcobs.notify.consumer import Consumer
from mcobs.notify.retry import AttemptKind, AttemptResult, result_for_status
from mcobs.notify.ssrf import denied_reason, first_denied

USER_AGENT = "mcobs-webhooks/1"


class TargetDenied(Exception):
    """The target host resolves to a denied address."""


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, but refuses hosts with a denied address."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        reason = first_denied(r["host"] for r in results)
        if reason is not None:
            raise TargetDenied(f"{host} resolves to {reason}, denied by deny_private")
        return results

    async def close(self) -> None:
        await self._inner.close()


def _literal_denied(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = denied_reason(host)
    return None if reason is None else f"{reason} is denied by deny_private"


def _connection_detail(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return "cannot resolve the host"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect: {error.os_error.strerror or type(error.os_error).__name__}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return f"connection failed: {type(error).__name__}"


class Sender:
    """Makes attempts; `close()` closes every consumer's session."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, consumer: Consumer) -> aiohttp.ClientSession:
        session = self._sessions.get(consumer.name)
        if session is None or session.closed:
            resolver = GuardedResolver() if consumer.deny_private else None
            connector = aiohttp.TCPConnector(resolver=resolver, limit_per_host=8)
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
            self._sessions[consumer.name] = session
        return session

    async def send(
        self, consumer: Consumer, body: bytes, headers: Mapping[str, str]
    ) -> AttemptResult:
        if consumer.deny_private:
            reason = _literal_denied(consumer.url)
            if reason is not None:
                return AttemptResult(AttemptKind.REFUSED, f"refused: {reason}")
        session = self._session(consumer)
        try:
            async with session.post(
                consumer.url,
                data=body,
                headers={**headers, "Content-Type": "application/json"},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=consumer.timeout),
            ) as response:
                return result_for_status(
                    response.status, response.headers.get("Retry-After"), self._clock()
                )
        except TargetDenied as error:
            return AttemptResult(AttemptKind.REFUSED, f"refused: {error}")
        except TimeoutError:
            return AttemptResult(AttemptKind.TIMEOUT, f"timed out after {consumer.timeout:g}s")
        except (aiohttp.ClientError, OSError) as error:
            return AttemptResult(AttemptKind.CONNECTION, _connection_detail(error))

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        if sessions:
            await asyncio.sleep(0)  # let aiohttp finish closing transports
