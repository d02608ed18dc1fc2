"""The pure-Python self-signed certificate the simulated API servers present."""

from __future__ import annotations

import secrets
import ssl

from mcobs.sim.tlscert import _G, _N, _mul, _mul_base, _sign, on_curve, self_signed, verify


def test_curve_constants_are_consistent() -> None:
    assert on_curve(_G)
    assert _mul(_N, _G) is None


def test_the_fast_base_multiplication_agrees_with_the_plain_one() -> None:
    for k in [1, 2, 15, 16, 17, _N - 1, *(secrets.randbelow(_N) for _ in range(10))]:
        assert _mul_base(k) == _mul(k, _G)


def test_signatures_verify_and_tampering_is_detected() -> None:
    private = 0x1234567890ABCDEF
    public = _mul(private, _G)
    assert public is not None
    signature = _sign(private, b"hello")

    assert verify(public, b"hello", signature)
    assert not verify(public, b"hellp", signature)


def test_the_certificate_loads_as_server_and_client_context() -> None:
    cert = self_signed(common_name="mcobs-sim eu-west")

    assert cert.cert_pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert isinstance(cert.server_context(), ssl.SSLContext)
    client = cert.client_context()
    assert client.verify_mode == ssl.CERT_REQUIRED
    assert len(client.get_ca_certs()) == 1
