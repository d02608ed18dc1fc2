"""Hand-rolled reading of the DNS header and question (RFC 1035 4.1), no dnspython.

Two users: the fast path, which recognises plain queries without a full parse, and the
error replies built when a packet cannot (or need not) be parsed any further.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

HEADER_SIZE = 12
MAX_NAME_WIRE = 255

# 16-bit header flags.
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
AD = 0x0020
CD = 0x0010
OPCODE_SHIFT = 11

CLASS_IN = 1
TYPE_OPT = 41

# Flags a plain query may carry: RD, CD and AD (RFC 6840 5.7: AD in a query asks for it).
_PLAIN_QUERY_FLAGS = RD | AD | CD
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00\x00"
_ONE_QUESTION_ONE_ADDITIONAL = b"\x00\x01\x00\x00\x00\x00\x00\x01"
_OPT_OWNER_AND_TYPE = b"\x00\x00\x29"
_OPT_SIZE = 11

# EDNS option codes.
OPTION_ECS = 8
OPTION_COOKIE = 10
OPTION_KEEPALIVE = 11

_ECS_FAMILY_WIDTH = {1: 32, 2: 128}


class Header(NamedTuple):
    id: int
    flags: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int

    @property
    def opcode(self) -> int:
        return (self.flags >> OPCODE_SHIFT) & 0xF

    @property
    def is_response(self) -> bool:
        return bool(self.flags & QR)


class Ecs(NamedTuple):
    """An EDNS Client Subnet option of a query (RFC 7871 6), already validated."""

    family: int
    """1: IPv4, 2: IPv6."""
    source: int
    """SOURCE PREFIX-LENGTH."""
    address: bytes
    """The first ceil(source / 8) bytes of the address, exactly as on the wire."""

    def ip(self) -> IPv4Address | IPv6Address:
        if self.family == 1:
            return IPv4Address(self.address.ljust(4, b"\0"))
        return IPv6Address(self.address.ljust(16, b"\0"))

    def option_data(self, scope: int) -> bytes:
        """The option data to echo in a response, with our SCOPE PREFIX-LENGTH."""
        return bytes((0, self.family, self.source, scope)) + self.address


def parse_ecs(data: bytes) -> Ecs | str:
    """The ECS option of a query, or why it is malformed (FORMERR, RFC 7871 6 and 7.1.1)."""
    if len(data) < 4:
        return f"ECS option of {len(data)} bytes"
    family = data[0] << 8 | data[1]
    source, scope = data[2], data[3]
    width = _ECS_FAMILY_WIDTH.get(family)
    if width is None:
        return f"ECS family {family}"
    if source > width:
        return f"ECS source prefix /{source} for family {family}"
    if scope:
        return f"ECS scope prefix /{scope} in a query"
    size = (source + 7) // 8
    if len(data) != 4 + size:
        return f"ECS address of {len(data) - 4} bytes for /{source}"
    if source % 8 and data[-1] & (0xFF >> (source % 8)):
        return f"ECS address bits set beyond /{source}"
    return Ecs(family, source, data[4:])


class PlainQuery(NamedTuple):
    """A query the fast path can answer: one IN question, at most a plain EDNS0 OPT.

    The OPT may carry a COOKIE (ignored) and a valid ECS option, nothing else.
    """

    name: bytes
    """The question name in wire format, folded to lower case."""
    qtype: int
    question_end: int
    """Offset just past the question (name, type, class)."""
    payload: int
    """The requestor's EDNS UDP payload size, or -1 without EDNS."""
    ecs: Ecs | None = None
    dnssec_ok: bool = False
    """The DO bit of the OPT, which the response copies (RFC 3225 3)."""


def read_header(wire: bytes) -> Header | None:
    if len(wire) < HEADER_SIZE:
        return None
    return Header(
        int.from_bytes(wire[0:2], "big"),
        int.from_bytes(wire[2:4], "big"),
        int.from_bytes(wire[4:6], "big"),
        int.from_bytes(wire[6:8], "big"),
        int.from_bytes(wire[8:10], "big"),
        int.from_bytes(wire[10:12], "big"),
    )


def name_end(wire: bytes, offset: int) -> int | None:
    """Offset just past an uncompressed name starting at `offset`, or None if malformed."""
    size = len(wire)
    i = offset
    while True:
        if i >= size:
            return None
        length = wire[i]
        if length == 0:
            break
        if length > 63:  # compression pointer or reserved label type
            return None
        i += length + 1
    i += 1
    if i - offset > MAX_NAME_WIRE:
        return None
    return i


def question_end(wire: bytes) -> int | None:
    """Offset just past the first question when it is well formed and uncompressed."""
    end = name_end(wire, HEADER_SIZE)
    if end is None or end + 4 > len(wire):
        return None
    return end + 4


def plain_query(wire: bytes) -> PlainQuery | None:
    """Recognise the common query shape; None sends the packet down the full parse."""
    size = len(wire)
    if size < HEADER_SIZE + 5:
        return None
    if (wire[2] << 8 | wire[3]) & ~_PLAIN_QUERY_FLAGS:
        return None
    counts = wire[4:12]
    if counts == _ONE_QUESTION:
        edns = False
    elif counts == _ONE_QUESTION_ONE_ADDITIONAL:
        edns = True
    else:
        return None
    end = name_end(wire, HEADER_SIZE)
    if end is None:
        return None
    qend = end + 4
    if wire[end + 2 : qend] != b"\x00\x01":  # class IN (also catches a short packet)
        return None
    if edns:
        # OPT: root owner, type 41, payload, extended rcode 0, version 0, flags with
        # only DO; options: at most one well-formed COOKIE (ignored) and one valid ECS.
        if size < qend + _OPT_SIZE or wire[qend : qend + 3] != _OPT_OWNER_AND_TYPE:
            return None
        if wire[qend + 5] or wire[qend + 6] or wire[qend + 7] & 0x7F or wire[qend + 8]:
            return None
        rdlen_at = qend + _OPT_SIZE - 2
        if size != rdlen_at + 2 + (wire[rdlen_at] << 8 | wire[rdlen_at + 1]):
            return None
        plain, ecs = _plain_options(wire, qend + _OPT_SIZE)
        if not plain:
            return None
        payload = wire[qend + 3] << 8 | wire[qend + 4]
        name = wire[HEADER_SIZE:end].lower()
        dnssec_ok = bool(wire[qend + 7] & 0x80)
        return PlainQuery(name, wire[end] << 8 | wire[end + 1], qend, payload, ecs, dnssec_ok)
    if size != qend:
        return None
    return PlainQuery(wire[HEADER_SIZE:end].lower(), wire[end] << 8 | wire[end + 1], qend, -1)


def _plain_options(wire: bytes, offset: int) -> tuple[bool, Ecs | None]:
    """Whether the options up to the end of `wire` are plain, and their ECS.

    Plain: at most one COOKIE of a valid size (RFC 7873) and at most one valid ECS.
    """
    size = len(wire)
    ecs: Ecs | None = None
    cookie = False
    while offset < size:
        if offset + 4 > size:
            return False, None
        code = wire[offset] << 8 | wire[offset + 1]
        length = wire[offset + 2] << 8 | wire[offset + 3]
        data_at = offset + 4
        offset = data_at + length
        if offset > size:
            return False, None
        if code == OPTION_COOKIE and not cookie and (length == 8 or 16 <= length <= 40):
            cookie = True
        elif code == OPTION_ECS and ecs is None:
            parsed = parse_ecs(wire[data_at:offset])
            if isinstance(parsed, str):
                return False, None
            ecs = parsed
        else:
            return False, None
    return True, ecs


def skip_name(wire: bytes, offset: int) -> int | None:
    """Offset past a possibly compressed name (pointers are not followed), or None."""
    size = len(wire)
    while offset < size:
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length >= 0xC0:
            return offset + 2 if offset + 2 <= size else None
        if length > 63:
            return None
        offset += length + 1
    return None


def opt_options(wire: bytes) -> list[tuple[int, bytes]] | None:
    """The EDNS options of the first OPT record of a message, None without an OPT.

    Meant for a message a full parser has accepted: anything odd gives None.
    """
    header = read_header(wire)
    if header is None:
        return None
    offset: int | None = HEADER_SIZE
    for _ in range(header.qdcount):
        assert offset is not None
        offset = skip_name(wire, offset)
        if offset is None:
            return None
        offset += 4
    for _ in range(header.ancount + header.nscount + header.arcount):
        assert offset is not None
        offset = skip_name(wire, offset)
        if offset is None or offset + 10 > len(wire):
            return None
        rdtype = wire[offset] << 8 | wire[offset + 1]
        rdlen = wire[offset + 8] << 8 | wire[offset + 9]
        rdata = offset + 10
        offset = rdata + rdlen
        if rdtype == TYPE_OPT:
            return _options(wire[rdata:offset])
    return None


def _options(rdata: bytes) -> list[tuple[int, bytes]] | None:
    options = []
    offset = 0
    while offset < len(rdata):
        if offset + 4 > len(rdata):
            return None
        code = rdata[offset] << 8 | rdata[offset + 1]
        end = offset + 4 + (rdata[offset + 2] << 8 | rdata[offset + 3])
        if end > len(rdata):
            return None
        options.append((code, rdata[offset + 4 : end]))
        offset = end
    return options


def header_reply(
    wire: bytes, rcode: int, *, echo_question: bool, truncated: bool = False
) -> bytes | None:
    """A reply built from the query header alone (ID, opcode and RD echoed).

    The question is copied when asked and when it can be read; None when even the
    header is missing. `truncated` sets TC (a rate-limited "slip" reply).
    """
    header = read_header(wire)
    if header is None:
        return None
    flags = QR | (header.flags & (0xF << OPCODE_SHIFT)) | (header.flags & RD) | (rcode & 0xF)
    if truncated:
        flags |= TC
    question = b""
    if echo_question and header.qdcount == 1:
        end = question_end(wire)
        if end is not None:
            question = wire[HEADER_SIZE:end]
    qdcount = 1 if question else 0
    return (
        wire[0:2]
        + flags.to_bytes(2, "big")
        + qdcount.to_bytes(2, "big")
        + b"\x00\x00\x00\x00\x00\x00"
        + question
    )
