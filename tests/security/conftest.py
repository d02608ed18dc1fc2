"""Fixtures of the security suite: simulated clusters, the demo's settings, a running hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcobs.cli import demo_settings
from mcobs.config import Settings
from mcobs.sim.fleet import SimFleet
from tests.security.support import Api, running_hub


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=3) as running:
        yield running


@pytest.fixture
def settings(fleet: SimFleet, tmp_path: Path) -> Settings:
    return demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with running_hub(settings) as running:
        yield running
