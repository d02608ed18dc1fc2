"""Mutated and truncated packets: never a crash, always a well-formed reply or silence."""

from __future__ import annotations

import asyncio
import random
import socket

import dns.edns
import dns.message
import dns.opcode
import dns.rcode

from mcobs.dnsserver import DnsServer, Responder
from mcobs.dnsserver.answers import respond_slow
from mcobs.zone import ZoneView
from tests.dnsserver.support import (
    API,
    BIG,
    WEB,
    WEB_SRV,
    ZONE,
    TcpClient,
    query_wire,
    udp_exchange,
)


def seeds() -> list[bytes]:
    cookie = dns.message.make_query(
        API, "AAAA", use_edns=0, options=[dns.edns.CookieOption(b"abcdefgh", b"")]
    )
    return [
        query_wire(WEB),
        query_wire(WEB, "AAAA", edns=0),
        query_wire(WEB_SRV, "SRV", edns=0, payload=4096),
        query_wire(ZONE, "NS"),
        query_wire(ZONE, "SOA", edns=0),
        query_wire(BIG, "A"),
        query_wire("nope." + ZONE, "TXT"),
        query_wire("example.org.", "A"),
        cookie.to_wire(),
        query_wire(WEB, edns=0, options=[dns.edns.CookieOption(b"12345678", b"s" * 16)]),
    ]


def mutate(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(10)
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
    return bytes(data)


def packets(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    base = seeds()
    return [mutate(rng, rng.choice(base)) for _ in range(count)]


def test_mutated_packets_in_process(view: ZoneView) -> None:
    fast = Responder()
    answered = 0
    for packet in packets(3000, seed=7):
        for udp in (True, False):
            out = fast.respond(view, packet, udp=udp)
            # The fast path never disagrees with the full parse, even on odd input.
            assert out == respond_slow(view, packet, udp=udp).wire, packet.hex()
            if out is None:
                continue
            answered += 1
            assert out[:2] == packet[:2]  # the ID
            assert out[2] & 0x80  # QR
            if (out[2] >> 3) & 0xF == dns.opcode.QUERY:  # other opcodes: header reply
                dns.message.from_wire(out)
            if udp:
                assert len(out) <= 1232
    assert answered > 3000
    assert fast.stats.internal_errors == 0
    assert fast.stats.malformed > 500


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


async def test_mutated_packets_over_udp(server: DnsServer) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for i, packet in enumerate(packets(2000, seed=11)):
            await loop.sock_sendto(sock, packet, ("127.0.0.1", server.port))
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the server keep up
    await asyncio.sleep(0.05)
    await assert_still_answers(server)
    assert server.stats.internal_errors == 0
    assert server.stats.malformed > 0


async def test_mutated_packets_over_tcp(server: DnsServer) -> None:
    rng = random.Random(13)
    batch: list[bytes] = []
    for packet in packets(2000, seed=17):
        batch.append(packet)
        if len(batch) == 100:
            client = await TcpClient.connect(server.port)
            try:
                for item in batch:
                    if rng.random() < 0.02:  # a broken frame: garbage length and bytes
                        client.writer.write(rng.randbytes(rng.randint(1, 20)))
                    else:
                        client.send(item)
                await client.writer.drain()
            finally:
                await client.close()
            batch.clear()
    await asyncio.sleep(0.05)
    await assert_still_answers(server)
    assert server.stats.internal_errors == 0
