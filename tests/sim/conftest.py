"""Fixtures for the simulator's tests: a started fleet, its kubeconfig, a task-leak check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcobs.sim import SimFleet


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=3) as started:
        yield started


@pytest.fixture
def kubeconfig(fleet: SimFleet, tmp_path: Path) -> Path:
    return fleet.write_kubeconfig(tmp_path / "kubeconfig")
