"""A real Alertmanager sends to mcobs; a critical alert takes its cluster out of DNS."""

from __future__ import annotations

import asyncio

from mcobs.catalog.memory import MemoryCatalog
from mcobs.config import Settings
from mcobs.hub import Hub
from mcobs.sim.fleet import SimFleet
from tests.alertmanager_server import Alertmanager
from tests.e2e.test_pipeline import WEB, addresses, eventually, lb_address

TOKEN = "alertmanager-test-token"


async def test_alertmanager_alert_downs_a_cluster_until_it_resolves(
    fleet: SimFleet, settings: Settings
) -> None:
    store = MemoryCatalog()
    everyone = {lb_address(fleet, c) for c in fleet.names}
    us_east = lb_address(fleet, "us-east")
    async with Hub(settings, store, token=TOKEN) as hub:
        port = hub.dns_port

        async def web_is(expected: set[str]) -> bool:
            return await addresses(port, WEB) == expected

        await eventually(lambda: web_is(everyone))
        webhook = f"http://127.0.0.1:{hub.http_port}/api/v1/alerts"
        with Alertmanager(webhook, TOKEN) as alertmanager:
            labels = {
                "alertname": "RegionNetworkDown",
                "cluster": "us-east",
                "severity": "critical",
            }
            await asyncio.to_thread(alertmanager.fire, labels, "transit link down")
            await eventually(lambda: web_is(everyone - {us_east}), limit=10)
            alerts = (await store.snapshot()).alerts
            assert [a.name for a in alerts.values()] == ["RegionNetworkDown"]
            await asyncio.to_thread(alertmanager.fire, labels, "transit link down", True)
            await eventually(lambda: web_is(everyone), limit=10)
    await store.close()
