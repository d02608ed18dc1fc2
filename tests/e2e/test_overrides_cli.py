"""`mcobs drain` and `mcobs undrain` against a running hub, seen in DNS and the API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import aiohttp

from mcobs.catalog.memory import MemoryCatalog
from mcobs.config import Settings
from mcobs.hub import Hub
from mcobs.sim.fleet import SimFleet
from tests.e2e.test_pipeline import WEB, addresses, eventually, lb_address

TOKEN = "a-long-enough-test-token"


async def mcobs(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MCOBS_API_TOKEN": token or ""}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "mcobs", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


async def test_drain_and_undrain_a_cluster(fleet: SimFleet, settings: Settings) -> None:
    store = MemoryCatalog()
    everyone = {lb_address(fleet, c) for c in fleet.names}
    eu_west = lb_address(fleet, "eu-west")
    async with Hub(settings, store, token=TOKEN) as hub:
        api = f"http://127.0.0.1:{hub.http_port}"

        async def web_is(expected: set[str]) -> bool:
            return await addresses(hub.dns_port, WEB) == expected

        await eventually(lambda: web_is(everyone))
        refused = await mcobs("drain", "eu-west", "--reason", "x", "--api", api, token=None)
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr

        done = await mcobs(
            "drain",
            "eu-west",
            "--reason",
            "kernel upgrade",
            "--for",
            "1h",
            "--by",
            "alice",
            "--api",
            api,
        )
        assert done.returncode == 0, done.stderr
        await eventually(lambda: web_is(everyone - {eu_west}), limit=2.0)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{api}/api/v1/services/default/web") as response,
        ):
            body = await response.json()
        choice = next(c for c in body["clusters"] if c["cluster"] == "eu-west")
        assert choice["reason"].startswith("cluster is drained: drained by alice: kernel upgrade")

        undone = await mcobs("undrain", "eu-west", "--api", api)
        assert undone.returncode == 0, undone.stderr
        await eventually(lambda: web_is(everyone), limit=2.0)
    await store.close()
