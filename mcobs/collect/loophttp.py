"""A requests transport adapter that sends through aiohttp on the hub's event loop.

prometheus-api-client speaks requests, which is synchronous, so its queries run
in worker threads. Under requests' own transport (urllib3, which grafana-client's
niquests replaces with urllib3-future) each query costs a few milliseconds of
Python in the worker, fighting the event loop for the GIL: at a thousand clusters,
a third of a core. Mounted on the session, `LoopAdapter` hands each request to
the hub's aiohttp session instead and waits for the answer; the worker thread
only waits.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import requests
import yarl
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

LONGEST = 60.0
"""Seconds a request without a time limit may take."""


@functools.lru_cache(maxsize=32)
def _verifying(ca_bundle: str | None, cert: tuple[str, str] | str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle)
    if isinstance(cert, tuple):
        context.load_cert_chain(*cert)
    elif cert:
        context.load_cert_chain(cert)
    return context


def _tls(verify: bool | str, cert: tuple[str, str] | str | None) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    return _verifying(verify if isinstance(verify, str) else None, cert)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _seconds(timeout: Any) -> float | None:
    """requests' timeout (a number, or a (connect, read) pair) as one total."""
    if isinstance(timeout, tuple):
        parts = [t for t in timeout if t is not None]
        return float(sum(parts)) if parts else None
    return float(timeout) if timeout is not None else None


class LoopAdapter(BaseAdapter):
    def __init__(self, session: aiohttp.ClientSession) -> None:
        super().__init__()
        self._session = session
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop `session` belongs to; set before the first request."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: tuple[str, str] | str | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if self.loop is None:
            raise requests.ConnectionError("no event loop to send on", request=request)
        url = str(request.url)
        proxy = (proxies or {}).get(url.split(":", 1)[0])
        total = _seconds(timeout)
        fetch = self._fetch(request, total, _tls(verify, cert), proxy)
        try:
            waiting = asyncio.run_coroutine_threadsafe(fetch, self.loop)
            # aiohttp's limit ends the request; this one only guards a loop that stopped.
            status, reason, headers, body = waiting.result((total or LONGEST) + 5)
        except TimeoutError:
            raise requests.Timeout(f"no answer within {total:g}s (timed out)") from None
        except (aiohttp.ClientError, OSError) as error:
            raise requests.ConnectionError(f"connection failed: {error}") from None
        response = requests.Response()
        response.status_code = status
        response.reason = reason
        response.headers = CaseInsensitiveDict(headers)
        response._content = body
        response.url = url
        response.request = request
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        return response

    async def _fetch(
        self,
        request: requests.PreparedRequest,
        total: float | None,
        tls: ssl.SSLContext | bool,
        proxy: str | None,
    ) -> tuple[int, str, dict[str, str], bytes]:
        async with self._session.request(
            str(request.method),
            yarl.URL(str(request.url), encoded=True),  # requests encoded it already
            headers={k: _text(v) for k, v in request.headers.items()},
            data=request.body,
            timeout=aiohttp.ClientTimeout(total=total or LONGEST),
            ssl=tls,
            proxy=proxy,
            allow_redirects=False,
        ) as answer:
            return answer.status, answer.reason or "", dict(answer.headers), await answer.read()

    def close(self) -> None:
        """The aiohttp session belongs to the hub, which closes it."""
