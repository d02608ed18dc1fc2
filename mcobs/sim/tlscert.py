"""A throwaway self-signed TLS certificate for the simulated API servers, in pure Python.

kubectl (client-go) sends bearer tokens only over TLS, so the simulated
Kubernetes APIs serve HTTPS. No crypto library is needed: this module makes an
ECDSA P-256 key and a self-signed X.509 v3 certificate for 127.0.0.1 and
localhost, which is also the CA that clients trust (`certificate-authority-data`
in the generated kubeconfig). For loopback simulation only: the nonce comes
from `secrets`, but nothing here is hardened against side channels.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import os
import secrets
import ssl
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime

# NIST P-256 (secp256r1)
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_A = _P - 3
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)

Point = tuple[int, int] | None


def _add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    (x1, y1), (x2, y2) = p, q
    if x1 == x2 and (y1 + y2) % _P == 0:
        return None
    if p == q:
        slope = (3 * x1 * x1 + _A) * pow(2 * y1, -1, _P) % _P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _mul(k: int, p: Point) -> Point:
    result: Point = None
    addend = p
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        k >>= 1
    return result


@functools.cache
def _base_table() -> tuple[tuple[Point, ...], ...]:
    """`j * 16**i * G` for i < 64, j < 16: k*G then takes at most 64 additions."""
    rows = []
    base: Point = _G
    for _ in range(64):
        row: list[Point] = [None]
        for _ in range(15):
            row.append(_add(row[-1], base))
        rows.append(tuple(row))
        base = _add(row[-1], base)
    return tuple(rows)


def _affine(x: int, y: int, z: int) -> tuple[int, int]:
    zi = pow(z, -1, _P)
    zi2 = zi * zi % _P
    return x * zi2 % _P, y * zi2 * zi % _P


def _mul_base(k: int) -> Point:
    """k*G with the precomputed table (k < 2**256), summed in Jacobian coordinates."""
    acc: tuple[int, int, int] | None = None
    for i, row in enumerate(_base_table()):
        point = row[(k >> (4 * i)) & 15]
        if point is None:
            continue
        x2, y2 = point
        if acc is None:
            acc = (x2, y2, 1)
            continue
        x1, y1, z1 = acc
        z1z1 = z1 * z1 % _P
        h = (x2 * z1z1 - x1) % _P
        r = (y2 * z1 * z1z1 - y1) % _P
        if h == 0:  # acc is +-point: let the affine formulas handle doubling or infinity
            total = _add(_affine(*acc), point)
            acc = None if total is None else (total[0], total[1], 1)
            continue
        hh = h * h % _P
        hhh = h * hh % _P
        v = x1 * hh % _P
        x3 = (r * r - hhh - 2 * v) % _P
        acc = (x3, (r * (v - x3) - y1 * hhh) % _P, z1 * h % _P)
    return None if acc is None else _affine(*acc)


def on_curve(p: tuple[int, int]) -> bool:
    x, y = p
    return (y * y - (x * x * x + _A * x + _B)) % _P == 0


def _sign(private: int, message: bytes) -> tuple[int, int]:
    digest = int.from_bytes(hashlib.sha256(message).digest(), "big")
    while True:
        k = secrets.randbelow(_N - 1) + 1
        point = _mul_base(k)
        assert point is not None
        r = point[0] % _N
        s = pow(k, -1, _N) * (digest + r * private) % _N
        if r and s:
            return r, s


def verify(public: tuple[int, int], message: bytes, signature: tuple[int, int]) -> bool:
    """ECDSA P-256/SHA-256 verification (used by the tests to check `_sign`)."""
    r, s = signature
    if not (0 < r < _N and 0 < s < _N):
        return False
    digest = int.from_bytes(hashlib.sha256(message).digest(), "big")
    w = pow(s, -1, _N)
    point = _add(_mul(digest * w % _N, _G), _mul(r * w % _N, public))
    return point is not None and point[0] % _N == r


# --- DER ---------------------------------------------------------------------------------


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # keeps a leading 0 for the sign
    return _tlv(0x02, raw)


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _bits(data: bytes, unused: int = 0) -> bytes:
    return _tlv(0x03, bytes([unused]) + data)


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _time(moment: datetime) -> bytes:
    if moment.year < 2050:
        return _tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


def _extension(oid: str, value: bytes, critical: bool = False) -> bytes:
    flag = _tlv(0x01, b"\xff") if critical else b""
    return _seq(_oid(oid), flag, _octets(value))


def _pem(label: str, der: bytes) -> str:
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_PRIME256V1 = "1.2.840.10045.3.1.7"


@dataclass(frozen=True, slots=True)
class SelfSigned:
    cert_pem: str
    """The certificate; clients trust it as their CA."""
    key_pem: str
    """Its SEC1 EC private key."""

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        fd, path = tempfile.mkstemp(prefix="mcobs-sim-", suffix=".pem")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(self.key_pem + self.cert_pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.cert_pem)


def self_signed(
    *,
    common_name: str = "mcobs-sim",
    ips: tuple[str, ...] = ("127.0.0.1",),
    dns_names: tuple[str, ...] = ("localhost",),
    days: int = 3650,
    now: float | None = None,
) -> SelfSigned:
    """A fresh key and a certificate valid from an hour before `now` for `days` days."""
    private = secrets.randbelow(_N - 1) + 1
    public = _mul_base(private)
    assert public is not None and on_curve(public)
    point = b"\x04" + public[0].to_bytes(32, "big") + public[1].to_bytes(32, "big")
    start = int(time.time() if now is None else now) - 3600
    not_before = datetime.fromtimestamp(start, UTC)
    not_after = datetime.fromtimestamp(start + days * 86400, UTC)
    name = _seq(_tlv(0x31, _seq(_oid("2.5.4.3"), _tlv(0x0C, common_name.encode()))))
    algorithm = _seq(_oid(_ECDSA_SHA256))
    key_id = hashlib.sha1(point, usedforsecurity=False).digest()
    alt_names = [_tlv(0x87, ipaddress.ip_address(ip).packed) for ip in ips]
    alt_names += [_tlv(0x82, dns.encode()) for dns in dns_names]
    extensions = _seq(
        _extension("2.5.29.19", _seq(_tlv(0x01, b"\xff")), critical=True),
        _extension("2.5.29.15", _bits(b"\x84", unused=2), critical=True),
        _extension("2.5.29.37", _seq(_oid("1.3.6.1.5.5.7.3.1"))),
        _extension("2.5.29.14", _octets(key_id)),
        _extension("2.5.29.35", _seq(_tlv(0x80, key_id))),
        _extension("2.5.29.17", _seq(*alt_names)),
    )
    tbs = _seq(
        _tlv(0xA0, _int(2)),
        _int(secrets.randbits(63) | 1),
        algorithm,
        name,
        _seq(_time(not_before), _time(not_after)),
        name,
        _seq(_seq(_oid(_EC_PUBLIC_KEY), _oid(_PRIME256V1)), _bits(point)),
        _tlv(0xA3, extensions),
    )
    r, s = _sign(private, tbs)
    certificate = _seq(tbs, algorithm, _bits(_seq(_int(r), _int(s))))
    key = _seq(
        _int(1),
        _octets(private.to_bytes(32, "big")),
        _tlv(0xA0, _oid(_PRIME256V1)),
        _tlv(0xA1, _bits(point)),
    )
    return SelfSigned(_pem("CERTIFICATE", certificate), _pem("EC PRIVATE KEY", key))
