"""HTTPS for the HTTP API from a configured certificate and key (`mcobs.api.tls`).

The server is the real API app on a `web.TCPSite(..., ssl_context=...)`, as the
hub builds it when `http.tls` is set; the certificate is a fresh self-signed
one for 127.0.0.1 (`mcobs.sim.tlscert`, so no crypto package is needed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from mcobs.answer import ZonePolicy
from mcobs.api.app import make_app
from mcobs.api.openapi import openapi_routes
from mcobs.api.tls import TlsError, server_context, tls_problems
from mcobs.catalog.memory import MemoryCatalog
from mcobs.cli import demo_settings
from mcobs.config import ConfigError, parse_settings
from mcobs.hub import Hub, HubState, Planner
from mcobs.sim.fleet import SimFleet
from mcobs.sim.tlscert import SelfSigned, self_signed
from mcobs.zone import Nameserver

TOKEN = "tls-suite-token-0123456789"


@dataclass(frozen=True)
class Pem:
    cert: SelfSigned
    cert_file: Path
    key_file: Path


def write_pem(directory: Path, name: str, cert: SelfSigned) -> Pem:
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_text(cert.cert_pem, encoding="ascii")
    key_file.write_text(cert.key_pem, encoding="ascii")
    key_file.chmod(0o600)
    return Pem(cert, cert_file, key_file)


@pytest.fixture(scope="module")
def certs() -> tuple[SelfSigned, SelfSigned]:
    return self_signed(common_name="mcobs-test"), self_signed(common_name="another")


@pytest.fixture
def pem(tmp_path: Path, certs: tuple[SelfSigned, SelfSigned]) -> Pem:
    return write_pem(tmp_path, "server", certs[0])


@pytest.fixture
async def https_port(pem: Pem) -> AsyncIterator[int]:
    policy = ZonePolicy(
        origin="global.example.com.", nameservers=(Nameserver("ns1.global.example.com."),)
    )
    state = HubState(Planner(policy, time.time), 30.0, time.time)
    app = make_app(state, openapi_routes(), token=TOKEN)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        # What Hub._start does with `http.tls` set:
        site = web.TCPSite(
            runner, "127.0.0.1", 0, ssl_context=server_context(pem.cert_file, pem.key_file)
        )
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_the_api_answers_over_https(https_port: int, pem: Pem) -> None:
    client_tls = pem.cert.client_context()  # trusts the server's certificate, checks 127.0.0.1
    async with aiohttp.ClientSession() as http:
        url = f"https://127.0.0.1:{https_port}"
        async with http.get(url + "/healthz", ssl=client_tls) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
        async with http.get(url + "/api/v1/openapi.json", ssl=client_tls) as response:
            assert response.status == 200
            assert (await response.json())["openapi"].startswith("3.1")
        wrong = {"Authorization": "Bearer wrong"}
        async with http.post(url + "/api/v1/drains", ssl=client_tls, headers=wrong) as response:
            assert response.status == 401


async def test_a_client_that_does_not_trust_the_certificate_is_refused(https_port: int) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            url = f"https://127.0.0.1:{https_port}/healthz"
            await http.get(url, ssl=ssl.create_default_context())


async def test_plain_http_gets_no_http_answer(https_port: int) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            await http.get(f"http://127.0.0.1:{https_port}/healthz")
    reader, writer = await asyncio.open_connection("127.0.0.1", https_port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(1024), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert not reply.startswith(b"HTTP/")  # a TLS alert or nothing, never a page
    assert b'"status"' not in reply


def test_the_context_is_a_server_context_of_tls_1_2_or_newer(pem: Pem) -> None:
    context = server_context(pem.cert_file, pem.key_file)
    assert context.protocol == ssl.PROTOCOL_TLS_SERVER
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # clients authenticate with the bearer token


def test_missing_files_are_named_both_at_once(tmp_path: Path) -> None:
    with pytest.raises(TlsError) as caught:
        server_context(tmp_path / "nope.crt", tmp_path / "nope.key")
    assert caught.value.problems == (
        f"cert_file {tmp_path / 'nope.crt'}: no such file",
        f"key_file {tmp_path / 'nope.key'}: no such file",
    )


def test_a_directory_is_not_a_certificate(tmp_path: Path, pem: Pem) -> None:
    assert tls_problems(tmp_path, pem.key_file) == [
        f"cert_file {tmp_path}: is a directory, not a file"
    ]


NOBODY = 65534


def problems_as_an_ordinary_user(cert_file: Path, key_file: Path) -> list[str]:
    """`tls_problems` as this user, or, for root (who reads any file), in a child
    process that has dropped to `nobody`."""
    if os.geteuid() != 0:
        return tls_problems(cert_file, key_file)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write, json.dumps(tls_problems(cert_file, key_file)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as answer:
        found = answer.read()
    os.waitpid(child, 0)
    return list(json.loads(found))


def test_an_unreadable_key_is_reported(pem: Pem) -> None:
    shared = Path(tempfile.mkdtemp())  # one an ordinary user can enter
    try:
        shared.chmod(0o755)
        cert_file, key_file = shared / "tls.crt", shared / "tls.key"
        cert_file.write_bytes(pem.cert_file.read_bytes())
        key_file.write_bytes(pem.key_file.read_bytes())
        key_file.chmod(0)
        assert problems_as_an_ordinary_user(cert_file, key_file) == [
            f"key_file {key_file}: cannot read: Permission denied"
        ]
    finally:
        shutil.rmtree(shared)


def test_files_that_are_not_pem_are_reported(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("hello\n")
    key.write_bytes(b"\x00\x01binary")
    assert tls_problems(cert, key) == [
        f"cert_file {cert}: no PEM certificate in it",
        f"key_file {key}: no PEM private key in it",
    ]


def test_swapped_files_are_reported(pem: Pem) -> None:
    assert tls_problems(pem.key_file, pem.cert_file) == [
        f"cert_file {pem.key_file}: no PEM certificate in it",
        f"key_file {pem.cert_file}: no PEM private key in it",
    ]


def test_a_key_of_another_certificate_is_reported(
    tmp_path: Path, certs: tuple[SelfSigned, SelfSigned]
) -> None:
    mine, other = write_pem(tmp_path, "mine", certs[0]), write_pem(tmp_path, "other", certs[1])
    assert tls_problems(mine.cert_file, other.key_file) == [
        f"key_file {other.key_file} does not match the certificate in {mine.cert_file}"
    ]


def test_an_encrypted_key_is_refused_without_prompting(pem: Pem) -> None:
    pem.key_file.write_text(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n"
        "-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    assert tls_problems(pem.cert_file, pem.key_file) == [
        f"key_file {pem.key_file}: the key is encrypted; give an unencrypted key"
    ]


def test_a_corrupt_certificate_is_reported_with_both_paths(pem: Pem) -> None:
    pem.cert_file.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----")
    [problem] = tls_problems(pem.cert_file, pem.key_file)
    assert problem.startswith(f"cert_file {pem.cert_file} / key_file {pem.key_file}: cannot load")


def test_a_key_others_can_read_is_warned_about(pem: Pem, caplog: pytest.LogCaptureFixture) -> None:
    pem.key_file.chmod(0o644)
    server_context(pem.cert_file, pem.key_file)
    assert f"TLS key_file {pem.key_file} can be read by group or others (mode 644)" in caplog.text
    caplog.clear()
    pem.key_file.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        server_context(pem.cert_file, pem.key_file)
    assert not caplog.records


# -- once wired: `http.tls` in the config, HTTPS from the hub ------------------------------


def test_check_config_names_every_tls_problem_with_its_path(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    data = {
        "zone": "global.example.com",
        "http": {"tls": {"cert_file": str(cert), "key_file": str(key)}},
        "clusters": [{"name": "eu-west", "region": "europe", "in_cluster": True}],
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(data)
    assert caught.value.problems == (
        f"http.tls: cert_file {cert}: no such file; key_file {key}: no such file",
    )


async def test_the_hub_serves_https_only_when_tls_is_configured(tmp_path: Path, pem: Pem) -> None:
    async with SimFleet.default(clusters=1) as fleet:
        plain = demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)
        data = plain.model_dump(mode="json")
        data["http"]["tls"] = {"cert_file": str(pem.cert_file), "key_file": str(pem.key_file)}
        settings = parse_settings(data)
        async with (
            Hub(settings, MemoryCatalog(), token=TOKEN, collect=False) as hub,
            aiohttp.ClientSession() as http,
        ):
            url = f"https://127.0.0.1:{hub.http_port}/healthz"
            async with http.get(url, ssl=pem.cert.client_context()) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):
                await http.get(f"http://127.0.0.1:{hub.http_port}/healthz")
