"""The authoritative DNS server: UDP and TCP listeners around a `Responder`.

The view comes from `view_provider()` on every packet (a cheap call returning the
current in-memory ZoneView); swapping views is the provider returning a new object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from mcobs.dnsserver.answers import EDNS_PAYLOAD
from mcobs.dnsserver.responder import Responder
from mcobs.dnsserver.stats import DnsStats
from mcobs.dnsserver.throttle import Throttle
from mcobs.zone import ZoneView

log = logging.getLogger(__name__)

ViewProvider = Callable[[], ZoneView]
_Handler = Callable[[bytes, object], bytes | None]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handle: _Handler) -> None:
        self._handle = handle
        self._transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = self._handle(data, addr)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %r", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _bind(host: str, port: int, backlog: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port (a free one when `port` is 0)."""
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
    )[0]
    attempts = 50 if port == 0 else 1
    for attempt in range(attempts):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            udp.bind(address)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(udp.getsockname())
            tcp.listen(backlog)
        except OSError:
            udp.close()
            tcp.close()
            if attempt == attempts - 1:
                raise
            continue
        return udp, tcp
    raise AssertionError("unreachable")


class DnsServer:
    """Serves a ZoneView over UDP and TCP on one port.

    TCP follows RFC 7766: several (pipelined) queries per connection, answered in
    order; a connection idle for `tcp_idle_timeout` seconds is closed, as is one
    announcing a message over `max_message_size` bytes; beyond `max_tcp_connections`
    new connections are closed at once. UDP datagrams over `max_message_size` are
    dropped.
    """

    def __init__(
        self,
        view_provider: ViewProvider,
        host: str = "127.0.0.1",
        port: int = 53,
        *,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 256,
        max_message_size: int = 4096,
        max_udp_payload: int = EDNS_PAYLOAD,
        responder: Responder | None = None,
    ) -> None:
        self._provider = view_provider
        self._host = host
        self._requested_port = port
        self._idle = tcp_idle_timeout
        self._max_connections = max_tcp_connections
        self._max_message = max_message_size
        self._responder = (
            responder if responder is not None else Responder(max_udp_payload=max_udp_payload)
        )
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _UdpProtocol | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._closing = False
        self._port = 0
        self._error_throttle = Throttle()

    @property
    def stats(self) -> DnsStats:
        return self._responder.stats

    @property
    def port(self) -> int:
        """The bound port (UDP and TCP); 0 before `start()`."""
        return self._port

    @property
    def udp_port(self) -> int:
        return self._port

    @property
    def tcp_port(self) -> int:
        return self._port

    @property
    def open_tcp_connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        if self._udp is not None:
            raise RuntimeError("DnsServer already started")
        loop = asyncio.get_running_loop()
        udp_sock, tcp_sock = _bind(self._host, self._requested_port, backlog=128)
        try:
            self._tcp = await asyncio.start_server(self._serve_connection, sock=tcp_sock)
            self._udp, self._udp_protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self._on_datagram), sock=udp_sock
            )
        except BaseException:
            if self._tcp is not None:
                self._tcp.close()
                self._tcp = None
            udp_sock.close()
            tcp_sock.close()
            raise
        self._closing = False
        self._port = udp_sock.getsockname()[1]
        log.info("DNS server listening on %s port %d (UDP and TCP)", self._host, self._port)

    async def stop(self) -> None:
        self._closing = True
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None:
            self._udp.close()
        await asyncio.sleep(0)  # let just-accepted connections register, then cancel them
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._udp_protocol is not None:
            await self._udp_protocol.closed
        self._tcp, self._udp, self._udp_protocol = None, None, None

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _answer(self, packet: bytes, peer: object, *, udp: bool) -> bytes | None:
        try:
            view = self._provider()
        except Exception:
            self.stats.internal_errors += 1
            self.stats.dropped += 1
            if self._error_throttle.allow():
                log.exception("the DNS view provider failed")
            return None
        return self._responder.respond(view, packet, udp=udp, peer=peer)

    def _on_datagram(self, packet: bytes, peer: object) -> bytes | None:
        if len(packet) > self._max_message:
            self.stats.malformed += 1
            self.stats.dropped += 1
            return None
        return self._answer(packet, peer, udp=True)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        stats = self.stats
        if self._closing or len(self._connections) >= self._max_connections:
            stats.tcp_rejected += 1
            await self._close(writer)
            return
        self._connections.add(task)
        stats.tcp_connections += 1
        peer = writer.get_extra_info("peername")
        try:
            while True:
                async with asyncio.timeout(self._idle):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    if size == 0 or size > self._max_message:
                        stats.malformed += 1
                        break
                    packet = await reader.readexactly(size)
                reply = self._answer(packet, peer, udp=False)
                if reply is None:
                    continue
                writer.write(len(reply).to_bytes(2, "big") + reply)
                async with asyncio.timeout(self._idle):
                    await writer.drain()
        except TimeoutError:
            stats.tcp_timeouts += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            stats.internal_errors += 1
            if self._error_throttle.allow():
                log.exception("internal error on a DNS TCP connection from %s", peer)
        finally:
            self._connections.discard(task)
            await self._close(writer)

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
