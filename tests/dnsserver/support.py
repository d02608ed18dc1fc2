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

from mcobs.geo import CidrLocator
from mcobs.zone import NameRecords, Nameserver, Soa, SrvRecord, VariedRecords, ZoneView

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


# -- a view with CNAMEs and varied (geo, weighted) names ------------------------------

GEO = "geo.default." + ZONE
WEIGHTED = "weighted.default." + ZONE
ALIAS = "alias.default." + ZONE
"""CNAME -> WEB."""
ALIAS_GEO = "www.default." + ZONE
"""CNAME -> GEO."""
ALIAS_OUT = "lb.default." + ZONE
OUTSIDE = "lb-123.elb.example.net."
ALIAS_NX = "dangling.default." + ZONE
ALIAS_EMPTY = "hollow.default." + ZONE
"""CNAME -> DRAINED (exists, no data)."""
CHAIN = "chain.default." + ZONE
"""CNAME -> ALIAS -> WEB."""
LOOP = "loop.default." + ZONE
"""CNAME -> LOOP2 -> LOOP."""
LOOP2 = "loop2.default." + ZONE
WEIGHTED_SRV = "_http._tcp." + WEIGHTED

GEO_EU = NameRecords(ttl=20, a=("10.1.0.1",), aaaa=("fd01::1",))
GEO_US = NameRecords(ttl=20, a=("10.2.0.1",), aaaa=("fd02::1",))
HEAVY = NameRecords(ttl=10, a=("10.3.0.1",))
LIGHT = NameRecords(ttl=10, a=("10.3.0.2",))

EUROPE_NET = "192.0.2.0/24"
US_NET = "198.51.100.0/24"
EUROPE_V6_NET = "2001:db8:e::/48"
EUROPE_CLIENT = "192.0.2.10"
US_CLIENT = "198.51.100.77"
EUROPE_V6_CLIENT = "2001:db8:e::5"


def locator() -> CidrLocator:
    return CidrLocator(
        {EUROPE_NET: "europe", US_NET: "us", EUROPE_V6_NET: "europe", "127.0.0.0/8": "us"}
    )


def varied_view(serial: int = 1) -> ZoneView:
    """`sample_view` plus CNAMEs, a geo name and a weighted name (3 variants: 2 heavy)."""
    base = sample_view(serial)
    names = dict(base.names)
    names.update(
        {
            GEO: GEO_EU,
            WEIGHTED: HEAVY,
            ALIAS: NameRecords(ttl=40, cname=WEB),
            ALIAS_GEO: NameRecords(ttl=40, cname=GEO),
            ALIAS_OUT: NameRecords(ttl=40, cname=OUTSIDE),
            ALIAS_NX: NameRecords(ttl=40, cname="gone.default." + ZONE),
            ALIAS_EMPTY: NameRecords(ttl=40, cname=DRAINED),
            CHAIN: NameRecords(ttl=50, cname=ALIAS),
            LOOP: NameRecords(ttl=40, cname=LOOP2),
            LOOP2: NameRecords(ttl=40, cname=LOOP),
            WEIGHTED_SRV: NameRecords(
                ttl=10, srv=(SrvRecord(priority=0, weight=1, port=80, target=WEIGHTED),)
            ),
        }
    )
    varied = {
        GEO: VariedRecords(
            variants=(GEO_EU, GEO_US),
            by_region=MappingProxyType({"europe": (GEO_EU,), "us": (GEO_US,)}),
            geo=True,
        ),
        WEIGHTED: VariedRecords(variants=(HEAVY, HEAVY, LIGHT)),
    }
    return dataclasses.replace(
        base,
        names=MappingProxyType(names),
        ancestors=base.ancestors | {"_tcp." + WEIGHTED},
        varied=MappingProxyType(varied),
    )


def ecs_option(address: str, source: int) -> dns.edns.Option:
    return dns.edns.ECSOption(address, source)


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
    dnssec_ok: bool = False,
) -> bytes:
    if edns is None:
        query = dns.message.make_query(name, rdtype, use_edns=False)
    else:
        query = dns.message.make_query(
            name,
            rdtype,
            use_edns=edns,
            payload=payload,
            options=list(options),
            want_dnssec=dnssec_ok,
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
