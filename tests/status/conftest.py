"""Fixtures of the status page suites: three simulated clusters and the demo's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcobs.cli import demo_settings
from mcobs.config import Settings
from mcobs.sim.fleet import SimFleet


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=3) as running:
        yield running


@pytest.fixture
def settings(fleet: SimFleet, tmp_path: Path) -> Settings:
    return demo_settings(fleet, fleet.write_kubeconfig(tmp_path / "kubeconfig"), 0, 0)
