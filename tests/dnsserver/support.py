"""Shared helpers for the DNS server tests: a sample zone, raw clients, dig."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
from collections.abc import Sequence
from types import MappingProxyType

import dns.edns
import dns.message

from mcobs.zone import NameRecords, Nameserver, Soa, SrvRecord, ZoneView

ZONE = "global.example.com."
WEB = "web.default." + ZONE
API = "api.default." + ZONE
WEB_SRV = "_http._tcp." + WEB
API_SRV = "_grpc._tcp." + API
WEB_EU = "eu-west." + WEB
WEB_US = "us-east." + WEB
API_EU = "eu-west." + API
BIG = "big.default." + ZONE
DRAINED = "drained.default." + ZONE
NS1 = "ns1." + ZONE
BIG_ADDRESSES = tuple(f"10.9.{i // 250}.{i % 250 + 1}" for i in range(100))


def sample_view(serial: int = 1, web_a: tuple[str, ...] = ("10.0.0.1", "10.0.1.1")) -> ZoneView:
    names = {
        NS1: NameRecords(ttl=300, a=("127.0.0.1",)),
        WEB: NameRecords(ttl=30, a=web_a, aaaa=("fd00::1",)),
        WEB_SRV: NameRecords(
            ttl=30,
            srv=(
                SrvRecord(priority=10, weight=60, port=8080, target=WEB_EU),
                SrvRecord(priority=10, weight=40, port=8080, target=WEB_US),
            ),
        ),
        WEB_EU: NameRecords(ttl=30, a=("10.0.0.1",), aaaa=("fd00::1",)),
        WEB_US: NameRecords(ttl=30, a=("10.0.1.1",)),
        API: NameRecords(ttl=60, a=("10.0.2.1",), aaaa=("fd00::2",)),
        API_SRV: NameRecords(
            ttl=60, srv=(SrvRecord(priority=0, weight=100, port=9090, target=API_EU),)
        ),
        API_EU: NameRecords(ttl=60, a=("10.0.2.1",)),
        BIG: NameRecords(ttl=30, a=BIG_ADDRESSES),
        DRAINED: NameRecords(ttl=30),
    }
    return ZoneView(
        origin=ZONE,
        soa=Soa(
            mname=NS1,
            rname="hostmaster." + ZONE,
            serial=serial,
            minimum=30,
            ttl=300,
        ),
        nameservers=(Nameserver(NS1, ("127.0.0.1",)),),
        names=MappingProxyType(names),
        ancestors=frozenset({"default." + ZONE, "_tcp." + WEB, "_tcp." + API}),
    )


def swapped_view() -> ZoneView:
    return sample_view(serial=2, web_a=("10.7.7.7",))


class ViewHolder:
    """The provider the server reads; tests swap `view`."""

    def __init__(self, view: ZoneView) -> None:
        self.view = view

    def __call__(self) -> ZoneView:
        return self.view


# -- raw clients ------------------------------------------------------------


async def udp_exchange(port: int, packet: bytes, wait: float = 2.0) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, packet, ("127.0.0.1", port))
        async with asyncio.timeout(wait):
            data, _ = await loop.sock_recvfrom(sock, 65535)
    return data


async def udp_silence(port: int, packet: bytes, wait: float = 0.3) -> bool:
    """True when the server sends nothing back within `wait` seconds."""
    try:
        await udp_exchange(port, packet, wait=wait)
    except TimeoutError:
        return True
    return False


class TcpClient:
    """A raw DNS-over-TCP connection (2-byte length framing)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> TcpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, packet: bytes) -> None:
        self.writer.write(len(packet).to_bytes(2, "big") + packet)

    async def receive(self, wait: float = 2.0) -> bytes:
        async with asyncio.timeout(wait):
            size = int.from_bytes(await self.reader.readexactly(2), "big")
            return await self.reader.readexactly(size)

    async def closed_by_server(self, wait: float = 2.0) -> bool:
        async with asyncio.timeout(wait):
            return await self.reader.read(1) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def query_wire(
    name: str,
    rdtype: str = "A",
    *,
    qid: int = 0x1234,
    edns: int | None = None,
    payload: int = 1232,
    flags: int | None = None,
    options: Sequence[dns.edns.Option] = (),
) -> bytes:
    if edns is None:
        query = dns.message.make_query(name, rdtype, use_edns=False)
    else:
        query = dns.message.make_query(
            name, rdtype, use_edns=edns, payload=payload, options=list(options)
        )
    query.id = qid
    if flags is not None:
        query.flags = flags
    return query.to_wire()


# -- dig ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DigResult:
    status: str
    flags: frozenset[str]
    answer: tuple[str, ...]
    authority: tuple[str, ...]
    additional: tuple[str, ...]
    question: tuple[str, ...]
    text: str

    def records(self, section: str) -> list[tuple[str, int, str, str]]:
        """(owner, ttl, type, rdata) per record line of a section."""
        out = []
        for line in getattr(self, section):
            owner, ttl, _cls, rdtype, rdata = line.split(None, 4)
            out.append((owner, int(ttl), rdtype, rdata))
        return out


_SECTIONS = {
    ";; QUESTION SECTION:": "question",
    ";; ANSWER SECTION:": "answer",
    ";; AUTHORITY SECTION:": "authority",
    ";; ADDITIONAL SECTION:": "additional",
}


def parse_dig(text: str) -> DigResult:
    status = re.search(r"status: ([A-Z0-9]+)", text)
    flags = re.search(r";; flags:([^;]*);", text)
    sections: dict[str, list[str]] = {name: [] for name in _SECTIONS.values()}
    current: str | None = None
    for line in text.splitlines():
        if line in _SECTIONS:
            current = _SECTIONS[line]
        elif not line.strip():
            current = None
        elif current is not None:
            sections[current].append(line.lstrip(";") if current == "question" else line)
    return DigResult(
        status=status.group(1) if status else "",
        flags=frozenset(flags.group(1).split()) if flags else frozenset(),
        answer=tuple(sections["answer"]),
        authority=tuple(sections["authority"]),
        additional=tuple(sections["additional"]),
        question=tuple(sections["question"]),
        text=text,
    )


async def dig(port: int, *args: str) -> DigResult:
    [result] = await dig_many(port, *args)
    return result


async def dig_many(port: int, *args: str) -> list[DigResult]:
    """Run dig once; one result per response it printed."""
    proc = await asyncio.create_subprocess_exec(
        "dig",
        "@127.0.0.1",
        "-p",
        str(port),
        "+tries=1",
        "+time=2",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    text = out.decode() + err.decode()
    marker = ";; ->>HEADER<<-"
    chunks = text.split(marker)[1:]
    assert chunks, text
    return [parse_dig(marker + chunk) for chunk in chunks]
