"""A hub's TLS connections hold small read buffers and still read every byte."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest

from mcobs.sim.tlscert import self_signed
from mcobs.tlsmemory import TLS_READ_BUFFER, shrink_tls_read_buffers

BODY = bytes(range(256)) * 8192  # 2 MiB, many TLS records


@pytest.fixture
def default_buffers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a test sets, the rest of the run gets asyncio's own size back."""
    protocol = asyncio.sslproto.SSLProtocol
    monkeypatch.setattr(protocol, "max_size", protocol.max_size)
    yield


@contextlib.asynccontextmanager
async def tls_server() -> AsyncIterator[tuple[int, object]]:
    cert = self_signed(common_name="tlsmemory test")

    async def send_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        writer.write(BODY)
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(send_body, "127.0.0.1", 0, ssl=cert.server_context())
    async with server:
        yield server.sockets[0].getsockname()[1], cert.client_context()


async def open_and_read(port: int, context: object) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    writer.write(b"?")
    assert await reader.readexactly(len(BODY)) == BODY
    return writer


@pytest.mark.usefixtures("default_buffers")
async def test_reads_are_whole_through_small_buffers() -> None:
    assert shrink_tls_read_buffers()
    assert asyncio.sslproto.SSLProtocol.max_size == TLS_READ_BUFFER
    async with tls_server() as (port, context):
        writer = await open_and_read(port, context)
        writer.close()
        await writer.wait_closed()


@pytest.mark.usefixtures("default_buffers")
async def test_open_tls_connections_hold_a_fraction_of_the_default_memory() -> None:
    async def held_per_connection(count: int = 40) -> float:
        async with tls_server() as (port, context):
            # The first connection warms the ssl module's own caches up.
            writers = [await open_and_read(port, context)]
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                writers += [await open_and_read(port, context) for _ in range(count)]
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            for writer in writers:
                writer.close()
                await writer.wait_closed()
            return held / count

    default = await held_per_connection()
    shrink_tls_read_buffers()
    small = await held_per_connection()
    # Each connection has a client and a server side here: 2 x 256 KiB by default.
    assert default > 2 * 256 * 1024
    assert small < default / 4


def test_a_buffer_smaller_than_a_tls_record_is_refused() -> None:
    with pytest.raises(ValueError, match="whole record"):
        shrink_tls_read_buffers(4096)
