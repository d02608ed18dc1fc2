"""One aiohttp application served on many loopback ports, one port per cluster.

A request knows its cluster by the local port it arrived on, so a fleet of a
thousand clusters needs two applications, not two thousand. An outage closes
the listening socket (connections are refused) but keeps the port bound by a
non-listening socket (SO_REUSEPORT), so nothing else takes it and recovery
listens on the same port again.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from mcobs.sim.gate import Gate

_REUSE_PORT = getattr(socket, "SO_REUSEPORT", None)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def local_port(request: web.BaseRequest) -> int | None:
    """The port the request arrived on; None once its connection is gone."""
    transport = request.transport
    if transport is None:
        return None
    sockname = transport.get_extra_info("sockname")
    return int(sockname[1]) if sockname else None


def drop(request: web.BaseRequest) -> asyncio.CancelledError:
    """Abort the request's connection without an answer; raise the returned error."""
    if request.transport is not None:
        request.transport.abort()
    return asyncio.CancelledError()


def availability_middleware(resolve: Callable[[web.BaseRequest], Gate | None]) -> Middleware:
    """Hold requests while the cluster hangs; drop them when it refuses or is unknown."""

    @web.middleware
    async def availability(request: web.Request, handler: Handler) -> web.StreamResponse:
        gate = resolve(request)
        if gate is None or not await gate.admit():
            raise drop(request)
        return await handler(request)

    return availability


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if _REUSE_PORT is not None:
            sock.setsockopt(socket.SOL_SOCKET, _REUSE_PORT, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class PortServer:
    """Serves `app` on any number of ports of `host`, each opened and closed on its own."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1") -> None:
        self._app = app
        self._host = host
        self._ssl: dict[int, ssl.SSLContext] = {}
        self._runner: web.AppRunner | None = None
        self._sites: dict[int, web.SockSite] = {}
        self._reserved: dict[int, socket.socket] = {}

    @property
    def host(self) -> str:
        return self._host

    async def start(self) -> None:
        runner = web.AppRunner(
            self._app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        self._runner = runner

    async def open(self, ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen on a free port picked by the OS (TLS when given a context); returns it."""
        port = await self._serve(_socket(self._host, 0), ssl_context)
        if ssl_context is not None:
            self._ssl[port] = ssl_context
        return port

    def listening(self, port: int) -> bool:
        return port in self._sites

    async def listen(self, port: int) -> None:
        """Accept connections on `port` again; no-op when already listening."""
        if port in self._sites:
            return
        await self._serve(_socket(self._host, port), self._ssl.get(port))
        held = self._reserved.pop(port, None)
        if held is not None:
            held.close()

    async def unlisten(self, port: int) -> None:
        """Refuse new connections on `port` (keeping it reserved) and abort the open ones."""
        site = self._sites.pop(port, None)
        if site is None:
            return
        if _REUSE_PORT is not None:  # a bound, non-listening socket keeps the port ours
            self._reserved[port] = _socket(self._host, port)
        await site.stop()
        self.drop_connections(port)

    async def _serve(self, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> int:
        if self._runner is None:
            sock.close()
            raise RuntimeError("PortServer.start() has not been awaited")
        site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        port = int(sock.getsockname()[1])
        self._sites[port] = site
        return port

    def drop_connections(self, port: int) -> int:
        """Abort every open connection to `port`; returns how many."""
        if self._runner is None or self._runner.server is None:
            return 0
        dropped = 0
        for conn in self._runner.server.connections:
            transport = conn.transport
            if transport is None:
                continue
            sockname = transport.get_extra_info("sockname")
            if sockname and sockname[1] == port:
                transport.abort()
                dropped += 1
        return dropped

    async def stop(self) -> None:
        for port, site in list(self._sites.items()):
            del self._sites[port]
            await site.stop()
            self.drop_connections(port)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for sock in self._reserved.values():
            sock.close()
        self._reserved.clear()
        self._ssl.clear()
