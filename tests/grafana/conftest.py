"""A fake Grafana on a free loopback port for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.grafana.fake_grafana import FakeGrafana


@pytest.fixture
async def fake_grafana() -> AsyncIterator[FakeGrafana]:
    fake = FakeGrafana()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()
    assert fake.problems == [], "requests Grafana would reject as malformed"
