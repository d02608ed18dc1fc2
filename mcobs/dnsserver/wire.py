"""Hand-rolled reading of the DNS header and question (RFC 1035 4.1), no dnspython.

Two users: the fast path, which recognises plain queries without a full parse, and the
error replies built when a packet cannot (or need not) be parsed any further.
"""

from __future__ import annotations

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
_COOKIE_CODE = b"\x00\x0a"


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


class PlainQuery(NamedTuple):
    """A query the fast path can answer: one IN question, at most a plain EDNS0 OPT."""

    name: bytes
    """The question name in wire format, folded to lower case."""
    qtype: int
    question_end: int
    """Offset just past the question (name, type, class)."""
    payload: int
    """The requestor's EDNS UDP payload size, or -1 without EDNS."""


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
    payload = -1
    if edns:
        # OPT: root owner, type 41, payload, extended rcode 0, version 0, flags with
        # only DO; no option or a single well-formed COOKIE (which we ignore).
        if size < qend + _OPT_SIZE or wire[qend : qend + 3] != _OPT_OWNER_AND_TYPE:
            return None
        if wire[qend + 5] or wire[qend + 6] or wire[qend + 7] & 0x7F or wire[qend + 8]:
            return None
        if not _no_option_or_a_cookie(wire, qend + _OPT_SIZE - 2):
            return None
        payload = wire[qend + 3] << 8 | wire[qend + 4]
    elif size != qend:
        return None
    return PlainQuery(wire[HEADER_SIZE:end].lower(), wire[end] << 8 | wire[end + 1], qend, payload)


def _no_option_or_a_cookie(wire: bytes, rdlen_at: int) -> bool:
    """The OPT rdata ends the packet and is empty or one COOKIE of a valid size (RFC 7873)."""
    rdlen = wire[rdlen_at] << 8 | wire[rdlen_at + 1]
    options = rdlen_at + 2
    if len(wire) != options + rdlen:
        return False
    if rdlen == 0:
        return True
    if rdlen < 4:
        return False
    if wire[options : options + 2] != _COOKIE_CODE:
        return False
    length = wire[options + 2] << 8 | wire[options + 3]
    return rdlen == length + 4 and (length == 8 or 16 <= length <= 40)


def header_reply(wire: bytes, rcode: int, *, echo_question: bool) -> bytes | None:
    """A reply built from the query header alone (ID, opcode and RD echoed).

    The question is copied when asked and when it can be read; None when even the
    header is missing.
    """
    header = read_header(wire)
    if header is None:
        return None
    flags = QR | (header.flags & (0xF << OPCODE_SHIFT)) | (header.flags & RD) | (rcode & 0xF)
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
