"""kubectl against the simulated API servers, with the generated kubeconfig."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from mcobs.sim import SimFleet
from tests.sim.helpers import eventually

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def _command(kubeconfig: Path, *args: str) -> list[str]:
    assert KUBECTL is not None
    return [KUBECTL, "--kubeconfig", str(kubeconfig), "--context", "eu-west", *args]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(tmp_path), "KUBECACHEDIR": str(tmp_path / "cache")}


async def test_get_lists_services_slices_and_nodes(kubeconfig: Path, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_command(kubeconfig, "get", "services,endpointslices,nodes", "-A"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(tmp_path),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)

    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "service/web" in text
    assert "192.0.2.1,2001:db8:1::1" in text
    assert "endpointslice.discovery.k8s.io/web-" in text
    assert "node/eu-west-node-1" in text


async def test_get_watch_prints_a_node_turning_not_ready(
    fleet: SimFleet, kubeconfig: Path, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_command(kubeconfig, "get", "nodes", "--watch"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=_env(tmp_path),
    )
    assert proc.stdout is not None
    try:
        await eventually(lambda: fleet.cluster("eu-west").gate.open_streams == 1, within=20)
        fleet.set_node_ready("eu-west", "eu-west-node-2", False)
        async with asyncio.timeout(10):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "kubectl ended before printing the change"
                if "eu-west-node-2" in line and "NotReady" in line:
                    break
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_watch_ends_when_the_cluster_goes_down(
    fleet: SimFleet, kubeconfig: Path, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_command(kubeconfig, "get", "services", "--watch"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=_env(tmp_path),
    )
    try:
        await eventually(lambda: fleet.cluster("eu-west").gate.open_streams == 1, within=20)
        await fleet.outage("eu-west")
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
