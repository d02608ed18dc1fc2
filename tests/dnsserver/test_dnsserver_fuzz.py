"""Random and mutated packets: never a crash or a hang, always a well-formed reply or silence."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import AsyncIterator

import dns.edns
import dns.message
import dns.opcode
import dns.rcode
import pytest

from mcobs.dnsserver import DnsServer, Responder
from tests.dnsserver.support import (
    ALIAS,
    ALIAS_GEO,
    API,
    BIG,
    GEO,
    WEB,
    WEB_SRV,
    WEIGHTED,
    ZONE,
    TcpClient,
    ecs_option,
    locator,
    query_wire,
    udp_exchange,
    varied_view,
)


def seeds() -> list[bytes]:
    cookie = dns.edns.CookieOption(b"abcdefgh", b"")
    return [
        query_wire(WEB),
        query_wire(WEB, "AAAA", edns=0),
        query_wire(WEB_SRV, "SRV", edns=0, payload=4096),
        query_wire(ZONE, "NS"),
        query_wire(ZONE, "SOA", edns=0),
        query_wire(BIG, "A"),
        query_wire("nope." + ZONE, "TXT"),
        query_wire("example.org.", "A"),
        query_wire(API, "AAAA", edns=0, options=[cookie]),
        query_wire(WEB, edns=0, options=[dns.edns.CookieOption(b"12345678", b"s" * 16)]),
        query_wire(GEO, edns=0, options=[ecs_option("192.0.2.0", 24)]),
        query_wire(GEO, "AAAA", edns=0, options=[ecs_option("2001:db8:e::", 56), cookie]),
        query_wire(ALIAS_GEO, edns=0, options=[ecs_option("198.51.96.0", 20)]),
        query_wire(ALIAS, "ANY"),
        query_wire(WEIGHTED, edns=0, options=[ecs_option("0.0.0.0", 0)]),
    ]


def random_ecs(rng: random.Random) -> bytes:
    """An ECS option (code, length, data), valid about half the time."""
    family = rng.choice([1, 1, 2, 2, 0, 3])
    source = rng.choice([rng.randrange(0, 33), rng.randrange(0, 129), rng.randrange(256)])
    scope = 0 if rng.random() < 0.8 else rng.randrange(256)
    size = (source + 7) // 8
    if rng.random() < 0.2:
        size = rng.randrange(0, 18)
    data = family.to_bytes(2, "big") + bytes((source, scope)) + rng.randbytes(size)
    if rng.random() < 0.7 and source % 8 and size:  # clear the bits past the prefix
        data = data[:-1] + bytes((data[-1] & (0xFF << (8 - source % 8)) & 0xFF,))
    return b"\x00\x08" + len(data).to_bytes(2, "big") + data


def with_opt(packet: bytearray, options: bytes) -> bytearray:
    """The question of `packet` followed by an OPT with `options` (when it has one)."""
    end = packet.find(0, 12)
    if end < 0 or end + 5 > len(packet):
        return packet
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00" + len(options).to_bytes(2, "big") + options
    out = bytearray(packet[: end + 5]) + opt
    out[4:12] = b"\x00\x01\x00\x00\x00\x00\x00\x01"
    return out


def mutate(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(15)
        if choice == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:  # replace a byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 2:  # truncate
            del data[rng.randrange(len(data) + 1) :]
        elif choice == 3:  # insert bytes
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.randbytes(rng.randint(1, 8))
        elif choice == 4 and len(data) >= 12:  # random header counts
            data[4:12] = rng.randbytes(8)
        elif choice == 5 and len(data) > 13:  # a compression pointer somewhere
            i = rng.randrange(12, len(data) - 1)
            data[i : i + 2] = bytes([0xC0 | rng.randrange(4), rng.randrange(256)])
        elif choice == 6:  # pure noise
            data = bytearray(rng.randbytes(rng.randint(0, 80)))
        elif choice == 7 and len(data) > 12:  # flip the case of the name's letters
            for i in range(12, len(data)):
                letter = 0x41 <= data[i] <= 0x5A or 0x61 <= data[i] <= 0x7A
                if letter and rng.random() < 0.5:
                    data[i] ^= 0x20
        elif choice == 8 and len(data) >= 4:  # the flags a plain query may carry
            data[2] ^= rng.choice([0x01, 0x00])
            data[3] ^= rng.choice([0x10, 0x20, 0x00])
        elif choice == 9 and len(data) > 17:  # another query type (name kept)
            end = data.index(0, 12) if 0 in data[12:] else -1
            if 12 <= end <= len(data) - 5:
                data[end + 1 : end + 3] = rng.randbytes(2)
        elif choice == 10:  # one or two ECS options, maybe with a cookie
            options = b"".join(random_ecs(rng) for _ in range(rng.choice([1, 1, 1, 2])))
            if rng.random() < 0.3:
                options += b"\x00\x0a\x00\x08" + rng.randbytes(8)
            data = with_opt(data, options)
        elif choice == 11 and len(data) > 14:  # a compression loop in the question
            data[12:14] = rng.choice([b"\xc0\x0c", b"\xc0\x0e"])
            data[14:16] = b"\xc0\x0c"
        elif choice == 12 and len(data) > 12:  # a label length past the end, or reserved
            data[rng.randrange(12, len(data))] = rng.choice([0x3F, 0x40, 0x7F, 0x80, 0xBF])
        elif choice == 13:  # oversized (beyond the server's 4096-byte limit, sometimes)
            data += rng.randbytes(rng.choice([600, 1500, 4100]))
        elif choice == 14 and len(data) > 12:  # a very long name
            labels = b"".join(b"\x3f" + b"a" * 63 for _ in range(rng.randint(3, 6)))
            data[12:12] = labels
    return bytes(data)


def packets(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    base = seeds()
    return [mutate(rng, rng.choice(base)) for _ in range(count)]


class Draws:
    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def test_mutated_packets_in_process() -> None:
    view = varied_view()
    draws = Draws()
    fast = Responder(locate=locator(), draw=draws)
    full = Responder(locate=locator(), draw=draws, fast_path=False)
    peers = [("192.0.2.10", 1), ("198.51.100.77", 1), ("203.0.113.1", 1)]
    answered = 0
    for i, packet in enumerate(packets(3000, seed=7)):
        draws.value = i % 3
        peer = peers[i % 3]
        for udp in (True, False):
            out = fast.respond(view, packet, udp=udp, peer=peer)
            # The fast path never disagrees with the full parse, even on odd input.
            assert out == full.respond(view, packet, udp=udp, peer=peer), packet.hex()
            if out is None:
                continue
            answered += 1
            assert_valid_reply(packet, out, udp=udp)
    assert answered > 3000
    assert fast.stats.internal_errors == full.stats.internal_errors == 0
    assert fast.stats.malformed > 500


ALLOWED_RCODES = {
    dns.rcode.NOERROR,
    dns.rcode.FORMERR,
    dns.rcode.NXDOMAIN,
    dns.rcode.NOTIMP,
    dns.rcode.REFUSED,
    dns.rcode.NOTAUTH,
    dns.rcode.BADVERS,
}


def assert_valid_reply(packet: bytes, out: bytes, *, udp: bool) -> None:
    """A reply to `packet`: its ID, QR set, a sane rcode, parseable, within UDP size."""
    assert out[:2] == packet[:2]  # the ID
    assert out[2] & 0x80  # QR
    if udp:
        assert len(out) <= 1232
    opcode = (out[2] >> 3) & 0xF
    if opcode != dns.opcode.QUERY:  # other opcodes: a header-only NOTIMP
        assert out[3] & 0xF == dns.rcode.NOTIMP
        return
    reply = dns.message.from_wire(out)
    assert reply.rcode() in ALLOWED_RCODES, reply.rcode()


@pytest.fixture
async def varied_server() -> AsyncIterator[DnsServer]:
    view = varied_view()
    async with DnsServer(
        lambda: view, port=0, tcp_idle_timeout=2.0, locate=locator(), draw=random.Random(3)
    ) as running:
        yield running
    assert running.open_tcp_connections == 0


async def assert_still_answers(server: DnsServer) -> None:
    reply = dns.message.from_wire(await udp_exchange(server.port, query_wire(WEB, qid=42)))
    assert (reply.id, reply.rcode(), len(reply.answer[0])) == (42, dns.rcode.NOERROR, 2)
    client = await TcpClient.connect(server.port)
    try:
        client.send(query_wire(API, qid=43))
        reply = dns.message.from_wire(await client.receive())
        assert (reply.id, reply.rcode()) == (43, dns.rcode.NOERROR)
    finally:
        await client.close()


def numbered(packet: bytes, number: int) -> bytes:
    """`packet` with the ID `number` (when it is long enough to have one)."""
    if len(packet) < 2:
        return packet
    return (number & 0xFFFF).to_bytes(2, "big") + packet[2:]


async def fuzz_udp(server: DnsServer, count: int, seed: int, deadline: float) -> int:
    """Send `count` packets in batches; check every reply. Returns the replies seen.

    Each batch ends with a good query: its reply comes after the replies to the batch
    (one socket, in order), so what is missing by then was dropped on purpose.
    """
    loop = asyncio.get_running_loop()
    seen = 0
    batch = 100
    corpus = packets(count, seed)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for start in range(0, count, batch):
            assert time.monotonic() < deadline, f"UDP fuzzing too slow at {start}"
            sent = {}
            for n in range(start, min(start + batch, count)):
                packet = numbered(corpus[n], n)
                sent[n & 0xFFFF] = packet
                await loop.sock_sendto(sock, packet, ("127.0.0.1", server.port))
            marker = (start + 50_000) & 0xFFFF
            await loop.sock_sendto(sock, query_wire(WEB, qid=marker), ("127.0.0.1", server.port))
            while True:
                async with asyncio.timeout(5):
                    out, _ = await loop.sock_recvfrom(sock, 65535)
                qid = int.from_bytes(out[:2], "big")
                if qid == marker:
                    assert dns.message.from_wire(out).rcode() == dns.rcode.NOERROR
                    break
                seen += 1
                assert_valid_reply(sent.pop(qid), out, udp=True)
    return seen


async def fuzz_tcp(server: DnsServer, count: int, seed: int, deadline: float) -> int:
    """Pipeline `count` packets over connections of 1000; check every framed reply."""
    rng = random.Random(seed)
    corpus = packets(count, seed)
    seen = 0
    for start in range(0, count, 1000):
        assert time.monotonic() < deadline, f"TCP fuzzing too slow at {start}"
        client = await TcpClient.connect(server.port)
        sent = {}
        try:
            frames = []
            for n in range(start, min(start + 1000, count)):
                packet = numbered(corpus[n], n)
                if not 0 < len(packet) <= 4096:  # the server would hang up: see below
                    continue
                sent[n & 0xFFFF] = packet
                frames.append(len(packet).to_bytes(2, "big") + packet)
            if rng.random() < 0.3:  # end with a frame the server hangs up on
                frames.append(rng.choice([b"\x00\x00", b"\xff\xff" + bytes(10), b"\x05"]))
            client.writer.write(b"".join(frames))
            client.writer.write_eof()  # the server sees the end, never waits for more
            while True:
                try:
                    out = await client.receive(wait=5)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # the end, or the server hung up on a bad frame
                seen += 1
                assert_valid_reply(sent.pop(int.from_bytes(out[:2], "big")), out, udp=False)
        finally:
            await client.close()
    return seen


@pytest.mark.slow
async def test_a_hundred_thousand_hostile_packets_over_udp_and_tcp(
    varied_server: DnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    deadline = started + 100
    with caplog.at_level(logging.ERROR):
        udp_seen = await fuzz_udp(varied_server, 60_000, seed=11, deadline=deadline)
        tcp_seen = await fuzz_tcp(varied_server, 40_000, seed=17, deadline=deadline)
    stats = varied_server.stats
    assert udp_seen > 30_000
    assert tcp_seen > 25_000
    assert stats.malformed > 10_000
    assert stats.internal_errors == 0
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    await assert_still_answers(varied_server)
    print(
        f"\n{udp_seen} UDP and {tcp_seen} TCP replies to 100,000 packets"
        f" in {time.monotonic() - started:.1f} s"
    )


async def test_mutated_packets_over_udp_and_tcp(varied_server: DnsServer) -> None:
    """A short run of the same, part of every test run."""
    deadline = time.monotonic() + 30
    assert await fuzz_udp(varied_server, 2000, seed=5, deadline=deadline) > 1000
    assert await fuzz_tcp(varied_server, 2000, seed=6, deadline=deadline) > 1000
    await assert_still_answers(varied_server)
    assert varied_server.stats.internal_errors == 0
