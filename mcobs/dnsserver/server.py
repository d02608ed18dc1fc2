"""The authoritative DNS server: UDP and TCP listeners around a `Responder`.

The view comes from `view_provider()` on every packet (a cheap call returning the
current in-memory ZoneView); swapping views is the provider returning a new object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

import dns.rcode

from mcobs.dnsserver import wire as w
from mcobs.dnsserver.answers import EDNS_PAYLOAD, Draw
from mcobs.dnsserver.ratelimit import RateLimit, RateLimiter, Verdict
from mcobs.dnsserver.responder import Responder
from mcobs.dnsserver.stats import DnsStats
from mcobs.dnsserver.throttle import Throttle
from mcobs.geo import Locator
from mcobs.zone import ZoneView

log = logging.getLogger(__name__)

ViewProvider = Callable[[], ZoneView]
DEFAULT_RATE_LIMIT = RateLimit()
_Handler = Callable[[bytes, object], bytes | None]


class LatencyObserver(Protocol):
    """Told how long each response took to compute and send (e.g. a histogram)."""

    def __call__(self, seconds: float, *, transport: str) -> None: ...


class _UdpReader:
    """Reads datagrams straight off the socket, up to `batch` per wakeup of the loop.

    Cheaper than a DatagramProtocol: no transport in between, and one loop callback
    serves a burst. Answers go out with a non-blocking `sendto`; when the send buffer
    is full the answer is dropped (counted in `dropped`), as UDP allows.
    """

    def __init__(
        self,
        sock: socket.socket,
        handle: _Handler,
        *,
        max_size: int,
        stats: DnsStats,
        observe: LatencyObserver | None = None,
        batch: int = 64,
    ) -> None:
        self._sock = sock
        self._handle = handle
        self._size = max_size + 1  # a longer datagram reads as max_size + 1 bytes: too big
        self._stats = stats
        self._observe = observe
        self._batch = batch
        self._fd = sock.fileno()
        sock.setblocking(False)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self._fd, self._on_readable)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self._fd)
        self._sock.close()

    def _on_readable(self) -> None:
        if self._observe is not None:
            self._on_readable_timed(self._observe)
            return
        recvfrom = self._sock.recvfrom
        sendto = self._sock.sendto
        handle = self._handle
        size = self._size
        for _ in range(self._batch):
            try:
                packet, peer = recvfrom(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("UDP socket error: %r", exc)
                continue
            reply = handle(packet, peer)
            if reply is not None:
                try:
                    sendto(reply, peer)
                except OSError as exc:
                    self._stats.dropped += 1
                    log.debug("UDP send to %s failed: %r", peer, exc)

    def _on_readable_timed(self, observe: LatencyObserver) -> None:
        for _ in range(self._batch):
            try:
                packet, peer = self._sock.recvfrom(self._size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("UDP socket error: %r", exc)
                continue
            started = time.perf_counter()
            reply = self._handle(packet, peer)
            if reply is None:
                continue
            try:
                self._sock.sendto(reply, peer)
            except OSError as exc:
                self._stats.dropped += 1
                log.debug("UDP send to %s failed: %r", peer, exc)
                continue
            observe(time.perf_counter() - started, transport="udp")


UDP_RECEIVE_BUFFER = 1 << 20
"""Bytes of queries the kernel may queue for us (capped by net.core.rmem_max): room for
a few thousand while the process is busy elsewhere (e.g. building a new view)."""


def _bind(
    host: str, port: int, backlog: int, reuse_port: bool = False
) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port (a free one when `port` is 0)."""
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
    )[0]
    attempts = 50 if port == 0 else 1
    for attempt in range(attempts):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(OSError):
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            if reuse_port:
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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

    TCP follows RFC 7766: several (pipelined) queries per connection, answered one
    after the other, in order; a connection idle for `tcp_idle_timeout` seconds is
    closed (and that timeout is what a query asking with edns-tcp-keepalive is told,
    RFC 7828), as is one announcing a message over `max_message_size` bytes; beyond
    `max_tcp_connections` new connections are closed at once. UDP datagrams over
    `max_message_size` are dropped.

    UDP answers are rate limited per client prefix (`rate_limit`, None: off; time
    from `clock`). `observe(seconds, transport=...)` is told how long each response
    took (from reading the query to handing the response to the kernel). `locate`
    and `draw` pick the variants of varied names (see `Responder`). With
    `reuse_port`, several processes can serve one port (SO_REUSEPORT; the kernel
    spreads packets and connections among them).
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
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        locate: Locator | None = None,
        draw: random.Random | Draw | None = None,
        reuse_port: bool = False,
        observe: LatencyObserver | None = None,
    ) -> None:
        self._provider = view_provider
        self._host = host
        self._requested_port = port
        self._idle = tcp_idle_timeout
        self._max_connections = max_tcp_connections
        self._max_message = max_message_size
        self._reuse_port = reuse_port
        self._observe = observe
        self._responder = (
            responder
            if responder is not None
            else Responder(
                max_udp_payload=max_udp_payload,
                locate=locate,
                draw=draw,
                tcp_keepalive=tcp_idle_timeout,
            )
        )
        self._limiter = None if rate_limit is None else RateLimiter(rate_limit, clock)
        self._udp: _UdpReader | None = None
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
        udp_sock, tcp_sock = _bind(
            self._host, self._requested_port, backlog=128, reuse_port=self._reuse_port
        )
        try:
            self._tcp = await asyncio.start_server(self._serve_connection, sock=tcp_sock)
            self._port = udp_sock.getsockname()[1]
            self._udp = _UdpReader(
                udp_sock,
                self._on_datagram,
                max_size=self._max_message,
                stats=self.stats,
                observe=self._observe,
            )
            self._udp.start(loop)
        except BaseException:
            if self._tcp is not None:
                self._tcp.close()
                self._tcp = None
            udp_sock.close()
            tcp_sock.close()
            raise
        self._closing = False
        log.info("DNS server listening on %s port %d (UDP and TCP)", self._host, self._port)

    async def stop(self) -> None:
        self._closing = True
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None:
            self._udp.close(asyncio.get_running_loop())
        await asyncio.sleep(0)  # let just-accepted connections register, then cancel them
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        self._tcp, self._udp = None, None

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
            self._provider_failed()
            return None
        return self._responder.respond(view, packet, udp=udp, peer=peer)

    def _provider_failed(self) -> None:
        self.stats.internal_errors += 1
        self.stats.dropped += 1
        if self._error_throttle.allow():
            log.exception("the DNS view provider failed")

    def _on_datagram(self, packet: bytes, peer: object) -> bytes | None:
        if len(packet) > self._max_message:
            self.stats.malformed += 1
            self.stats.dropped += 1
            return None
        limiter = self._limiter
        if limiter is not None:
            verdict = limiter.check(peer)
            if verdict:
                return self._limited(packet, verdict)
        try:
            view = self._provider()
        except Exception:
            self._provider_failed()
            return None
        return self._responder.respond(view, packet, udp=True, peer=peer)

    def _limited(self, packet: bytes, verdict: Verdict) -> bytes | None:
        stats = self.stats
        reply = None
        if verdict == Verdict.SLIP and len(packet) > 2 and not packet[2] & 0x80:  # not a response
            reply = w.header_reply(packet, dns.rcode.NOERROR, echo_question=True, truncated=True)
        if reply is None:
            stats.rate_limited += 1
        else:
            stats.rate_limited_slipped += 1
        return reply

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
                started = time.perf_counter()
                reply = self._answer(packet, peer, udp=False)
                if reply is None:
                    continue
                writer.write(len(reply).to_bytes(2, "big") + reply)
                async with asyncio.timeout(self._idle):
                    await writer.drain()
                if self._observe is not None:
                    self._observe(time.perf_counter() - started, transport="tcp")
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
