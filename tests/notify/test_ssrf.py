from __future__ import annotations

import pytest

from mcobs.notify.ssrf import denied_reason, first_denied


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 (loopback)"),
        ("::1", "::1 (loopback)"),
        ("10.1.2.3", "10.1.2.3 (private)"),
        ("192.168.0.1", "192.168.0.1 (private)"),
        ("fd00::1", "fd00::1 (private)"),
        ("169.254.169.254", "169.254.169.254 (link-local)"),
        ("fe80::1%eth0", "fe80::1 (link-local)"),
        ("0.0.0.0", "0.0.0.0 (unspecified)"),
        ("224.0.0.1", "224.0.0.1 (multicast)"),
        ("100.64.0.1", "100.64.0.1 (not globally routable)"),
        ("::ffff:127.0.0.1", "127.0.0.1 (loopback)"),
        ("not-an-ip", "'not-an-ip' is not an IP address"),
    ],
)
def test_internal_addresses_are_denied(address: str, reason: str) -> None:
    assert denied_reason(address) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(address: str) -> None:
    assert denied_reason(address) is None


def test_one_denied_address_among_public_ones_denies_the_host() -> None:
    assert first_denied(["93.184.215.14", "10.0.0.1"]) == "10.0.0.1 (private)"
    assert first_denied(["93.184.215.14"]) is None
