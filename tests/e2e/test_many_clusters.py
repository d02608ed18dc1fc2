"""More clusters than aiohttp's default connection cap (100) can hold watches for."""

from __future__ import annotations

from pathlib import Path

from mcobs.catalog.memory import MemoryCatalog
from mcobs.cli import demo_settings
from mcobs.hub import Hub
from mcobs.model import HealthState
from mcobs.sim.fleet import SimFleet
from tests.e2e.test_pipeline import eventually


async def test_forty_clusters_are_all_collected_and_healthy(tmp_path: Path) -> None:
    # 40 clusters x 3 watches = 120 long-lived connections, plus probes.
    async with SimFleet.default(clusters=40) as fleet:
        settings = demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)
        store = MemoryCatalog()
        async with Hub(settings, store) as hub:

            async def all_synced() -> bool:
                reports = hub.state.snapshot.reports.values()
                return len(reports) == 40 and all(
                    r.services_synced and r.health.state is HealthState.HEALTHY for r in reports
                )

            await eventually(all_synced, limit=20)
        await store.close()
