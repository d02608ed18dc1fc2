"""TLS for the HTTP API: an `ssl.SSLContext` from a configured certificate and key.

    http:
      tls:
        cert_file: /etc/mcobs/tls/tls.crt   # PEM: the server certificate, then any intermediates
        key_file: /etc/mcobs/tls/tls.key    # PEM: its private key, unencrypted

`server_context` checks both files and reports every problem at once (missing,
unreadable, not PEM, an encrypted key, a key that does not belong to the
certificate) before OpenSSL sees them, so the message names the file and the
reason instead of `[SSL] PEM lib`. `tls_problems` is the same check for the
config validator (`mcobs check-config`). Only the standard library: the config
module can import this one.
"""

from __future__ import annotations

import logging
import re
import ssl
import stat
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

_CERTIFICATE: Final = re.compile(rb"-----BEGIN CERTIFICATE-----")
_PRIVATE_KEY: Final = re.compile(rb"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----")
_ENCRYPTED: Final = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")
MAX_PEM_BYTES: Final = 1024 * 1024


class TlsError(ValueError):
    """The certificate or key cannot serve TLS; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def _read(field: str, path: Path, problems: list[str]) -> bytes | None:
    where = f"{field} {path}"
    try:
        if path.is_dir():
            problems.append(f"{where}: is a directory, not a file")
            return None
        with path.open("rb") as file:
            data = file.read(MAX_PEM_BYTES + 1)
    except FileNotFoundError:
        problems.append(f"{where}: no such file")
        return None
    except OSError as error:
        problems.append(f"{where}: cannot read: {error.strerror or error}")
        return None
    if len(data) > MAX_PEM_BYTES:
        problems.append(f"{where}: larger than {MAX_PEM_BYTES} bytes; not a PEM file")
        return None
    return data


def _check_pem(cert_file: Path, key_file: Path, problems: list[str]) -> None:
    cert = _read("cert_file", cert_file, problems)
    key = _read("key_file", key_file, problems)
    if cert is not None and not _CERTIFICATE.search(cert):
        problems.append(f"cert_file {cert_file}: no PEM certificate in it")
    if key is None:
        return
    if _ENCRYPTED.search(key):
        problems.append(f"key_file {key_file}: the key is encrypted; give an unencrypted key")
    elif not _PRIVATE_KEY.search(key):
        problems.append(f"key_file {key_file}: no PEM private key in it")


def _refuse_password() -> bytes:
    # Never let OpenSSL prompt on a terminal for a key passphrase.
    raise TlsError(["key_file: the key is encrypted; give an unencrypted key"])


def _warn_if_exposed(key_file: Path) -> None:
    try:
        mode = key_file.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "TLS key_file %s can be read by group or others (mode %o); chmod 600 it",
            key_file,
            stat.S_IMODE(mode),
        )


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or newer) for the HTTP API; raises TlsError."""
    context = _load(cert_file, key_file)
    _warn_if_exposed(key_file)
    return context


def _load(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    problems: list[str] = []
    _check_pem(cert_file, key_file, problems)
    if problems:
        raise TlsError(problems)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file, password=_refuse_password)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            message = f"key_file {key_file} does not match the certificate in {cert_file}"
        else:
            reason = error.reason or str(error)
            message = f"cert_file {cert_file} / key_file {key_file}: cannot load: {reason}"
        raise TlsError([message]) from None
    return context


def tls_problems(cert_file: Path, key_file: Path) -> list[str]:
    """Every reason `server_context` would refuse these files; empty when they serve."""
    try:
        _load(cert_file, key_file)
    except TlsError as error:
        return list(error.problems)
    return []
