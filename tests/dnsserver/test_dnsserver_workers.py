"""Several servers on one port (SO_REUSEPORT), in this process and as worker processes."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import dns.message
import dns.rcode

from mcobs.dnsserver import DnsServer
from tests.dnsserver.support import WEB, ZONE, query_wire, sample_view


async def serials_seen(port: int, sockets: int = 64) -> set[int]:
    """The SOA serials answered to queries from `sockets` different source ports."""
    loop = asyncio.get_running_loop()
    seen = set()
    for qid in range(sockets):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_sendto(sock, query_wire(ZONE, "SOA", qid=qid), ("127.0.0.1", port))
            async with asyncio.timeout(2):
                data, _ = await loop.sock_recvfrom(sock, 4096)
        seen.add(dns.message.from_wire(data).answer[0][0].serial)
    return seen


async def test_two_servers_share_a_port() -> None:
    one, two = sample_view(serial=1), sample_view(serial=2)
    async with DnsServer(lambda: one, port=0, reuse_port=True) as first:
        async with DnsServer(lambda: two, port=first.port, reuse_port=True) as second:
            assert second.port == first.port
            assert await serials_seen(first.port) == {1, 2}
        assert await serials_seen(first.port, sockets=8) == {1}  # the other one left


async def start_worker(port: int, serial: int) -> tuple[asyncio.subprocess.Process, int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.dnsserver.worker_main",
        str(port),
        str(serial),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = (await proc.stdout.readline()).decode().split()
    assert line, "the worker did not start"
    return proc, int(line[0]), line[1]


async def stop_worker(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        return await proc.wait()


async def test_worker_processes_share_a_port_on_uvloop_and_stop_on_sigterm() -> None:
    first, port, loop = await start_worker(0, serial=1)
    try:
        assert loop.startswith("uvloop")
        second, second_port, _ = await start_worker(port, serial=2)
        try:
            assert second_port == port
            assert await serials_seen(port) == {1, 2}
            reply = await asyncio.wait_for(_tcp_query(port), 2)
            assert reply.rcode() == dns.rcode.NOERROR
        finally:
            assert await stop_worker(second) == 0
    finally:
        assert await stop_worker(first) == 0


async def _tcp_query(port: int) -> dns.message.Message:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        packet = query_wire(WEB)
        writer.write(len(packet).to_bytes(2, "big") + packet)
        size = int.from_bytes(await reader.readexactly(2), "big")
        return dns.message.from_wire(await reader.readexactly(size))
    finally:
        writer.close()
        await writer.wait_closed()
