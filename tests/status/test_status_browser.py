"""The status page in a real headless Chromium: a simulated outage reaches the screen.

Runs a real hub in-process against three simulated clusters, opens `/`, takes
`us-east` down and measures how long the page lags behind mcobs' own API.
Saves `artifacts/status-page.png`; with MCOBS_DOCS_SCREENSHOT=1 (or when it is
missing) also `docs/status-page.png`, the README's picture.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from mcobs.api.app import make_app
from mcobs.catalog.memory import MemoryCatalog
from mcobs.config import Settings
from mcobs.decide.events import MemoryEventLog
from mcobs.decide.lease import LeaseBoard, MemoryLease
from mcobs.hub import Hub
from mcobs.sim.control import sim_routes
from mcobs.sim.fleet import SimFleet
from mcobs.status import status_routes
from tests.status.chromium import Chromium, Page
from tests.status.fakes import DOWN, two_clusters
from tests.status.fakes import Hub as FakeHub

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "artifacts" / "status-page.png"
DOCS = ROOT / "docs" / "status-page.png"
MAX_LAG = 2.0
pytestmark = pytest.mark.slow


async def until(check: Callable[[], Awaitable[bool]], limit: float, what: str) -> float:
    """The monotonic time at which `check` first held; fails after `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await check():
            return time.monotonic()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {limit}s")


def js_cluster_state(name: str) -> str:
    return f"document.querySelector('#clusters tr[data-cluster=\"{name}\"]')?.dataset.state"


async def test_an_outage_shows_on_the_page_within_two_seconds(
    fleet: SimFleet, settings: Settings, tmp_path: Path
) -> None:
    board = LeaseBoard()
    lease = MemoryLease(board, holder="status-test")
    events = MemoryEventLog(board)
    store = MemoryCatalog()
    hub = Hub(
        settings,
        store,
        extra_routes=sim_routes(fleet),
        open_mutations=True,
        lease=lease,
        events=events,
    )
    try:
        async with hub, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{hub.http_port}"

            async def api_state(name: str) -> str | None:
                async with http.get(f"{base}/api/v1/clusters") as response:
                    body = await response.json()
                return next(
                    (c["health"]["state"] for c in body["clusters"] if c["name"] == name), None
                )

            async def api_all_healthy() -> bool:
                return all([await api_state(n) == "healthy" for n in fleet.names])

            await until(api_all_healthy, 20, "the API shows 3 healthy clusters")

            async with Chromium.start(tmp_path) as browser:
                page = await browser.page()
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=1280,
                    height=800,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                await page.goto(base + "/")
                await page.wait_for(
                    "document.querySelectorAll('#clusters tr[data-state=\"healthy\"]').length"
                    " === 3 && document.getElementById('conn').dataset.state === 'live'",
                    10,
                )
                assert await page.evaluate("document.getElementById('headline').textContent") == (
                    "● All 3 clusters healthy"
                )
                await lagging_outage(page, fleet, api_state)
                await shows_the_outage(page)
                await keep_screenshot(page)
                assert page.problems() == []
                assert page.requested_urls(), "the DevTools network log recorded nothing"
                assert all(u.startswith(base + "/") for u in page.requested_urls()), (
                    page.requested_urls()
                )
    finally:
        await events.close()
        await store.close()


async def lagging_outage(
    page: Page, fleet: SimFleet, api_state: Callable[[str], Awaitable[str | None]]
) -> None:
    """Take us-east down; the page must show it within MAX_LAG of the API."""

    async def api_down() -> bool:
        return await api_state("us-east") == "down"

    async def page_down() -> bool:
        return bool(await page.evaluate(f"{js_cluster_state('us-east')} === 'down'"))

    started = time.monotonic()
    await fleet.outage("us-east")
    api_at, page_at = await asyncio.gather(
        until(api_down, 15, "the API shows us-east down"),
        until(page_down, 15, "the page shows us-east down"),
    )
    lag = page_at - api_at
    print(
        f"\noutage -> API shows us-east down: {api_at - started:.2f}s; "
        f"-> page shows it: {page_at - started:.2f}s; page behind API: {max(0.0, lag):.2f}s"
    )
    assert lag < MAX_LAG


async def shows_the_outage(page: Page) -> None:
    """What an on-call person reads: the headline, the row, the answers and the event."""
    text = await page.evaluate(
        "document.querySelector('#clusters tr[data-cluster=\"us-east\"]').innerText"
    )
    assert "down" in text and "us-east" in text
    assert await page.evaluate("document.getElementById('headline').textContent") == (
        "✕ 1 of 3 clusters down"
    )
    assert (
        await page.evaluate(
            'document.querySelector(\'#services tr[data-service="default/web"]'
            ' li[data-cluster="us-east"]\').dataset.in'
        )
        == "no"
    )
    await page.wait_for(
        "[...document.querySelectorAll('#events li')].some(li =>"
        " li.dataset.type === 'cluster.state_changed' && li.innerText.includes('us-east')"
        " && li.innerText.includes('healthy → down'))",
        10,
    )
    await page.wait_for(
        "document.querySelectorAll('#events li[data-type=\"service.failover\"]').length >= 1", 10
    )
    # Open one service's reasons, as a person would, for the picture.
    await page.evaluate(
        "document.querySelector('#services tr[data-service=\"default/web\"] .why-toggle').click()"
    )


async def keep_screenshot(page: Page) -> None:
    png = await page.screenshot()
    assert png.startswith(b"\x89PNG")
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_bytes(png)
    print(f"screenshot: {ARTIFACT}")
    if os.environ.get("MCOBS_DOCS_SCREENSHOT") == "1" or not DOCS.exists():
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        DOCS.write_bytes(png)
        print(f"screenshot for the README: {DOCS}")


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, runner.addresses[0][1]


async def test_the_page_says_reconnecting_while_the_hub_is_away_and_recovers(
    tmp_path: Path,
) -> None:
    hub = FakeHub(two_clusters())
    closing = asyncio.Event()

    def app() -> web.Application:
        return make_app(hub, status_routes(hub, None, closing=closing))

    runner, port = await serve(app())
    try:
        async with Chromium.start(tmp_path) as browser:
            page = await browser.page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.wait_for("document.getElementById('conn').dataset.state === 'live'", 10)
            assert await page.evaluate("document.getElementById('events-note').textContent") == (
                "This hub keeps no event log."
            )
            closing.set()
            await runner.cleanup()
            await page.wait_for(
                "document.getElementById('conn').dataset.state === 'reconnecting'", 5
            )
            assert await page.evaluate("document.getElementById('conn-text').textContent") == (
                "Reconnecting…"
            )
            assert await page.evaluate("document.getElementById('main').className") == "offline"
            hub.set(two_clusters(us_east=DOWN))
            closing.clear()
            runner, _ = await serve(app(), port)
            await page.wait_for(
                "document.getElementById('conn').dataset.state === 'live'"
                f" && {js_cluster_state('us-east')} === 'down'",
                10,
            )
            assert await page.evaluate("document.getElementById('main').className") == ""
    finally:
        closing.set()
        await runner.cleanup()


async def test_the_page_explains_a_hub_that_protects_reads(tmp_path: Path) -> None:
    hub = FakeHub(two_clusters())
    closing = asyncio.Event()
    app = make_app(
        hub, status_routes(hub, None, closing=closing), token="secret", protect_reads=True
    )
    runner, port = await serve(app)
    try:
        async with Chromium.start(tmp_path) as browser:
            page = await browser.page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.wait_for(
                "document.getElementById('headline').textContent.includes('protect_reads')", 10
            )
    finally:
        closing.set()
        await runner.cleanup()
