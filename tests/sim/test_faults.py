"""Outages: refused connections, cut watches, hanging servers, recovery on the same ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from mcobs.sim import SimCluster, SimFleet
from tests.sim.helpers import eventually


@pytest.fixture
async def http(fleet: SimFleet) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=fleet.client_ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def _auth(cluster: SimCluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.token}"}


async def _refused(port: int | None) -> bool:
    assert port is not None
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_outage_refuses_both_ports_and_recovery_answers_on_the_same_ones(
    fleet: SimFleet, http: aiohttp.ClientSession
) -> None:
    us_east = fleet.cluster("us-east")
    kube_url, prom_url = us_east.kube_url, us_east.prometheus_url

    await fleet.outage("us-east")

    assert await _refused(us_east.kube_port)
    assert await _refused(us_east.prom_port)
    async with http.get(
        f"{fleet.cluster('eu-west').kube_url}/readyz", headers=_auth(fleet.cluster("eu-west"))
    ) as resp:
        assert resp.status == 200  # the others keep answering

    await fleet.recover("us-east")

    assert (us_east.kube_url, us_east.prometheus_url) == (kube_url, prom_url)
    async with http.get(f"{kube_url}/readyz", headers=_auth(us_east)) as resp:
        assert (resp.status, await resp.text()) == (200, "ok")
    async with http.get(f"{prom_url}/-/ready") as resp:
        assert resp.status == 200


async def test_outage_drops_kept_alive_connections(
    fleet: SimFleet, http: aiohttp.ClientSession
) -> None:
    ap_south = fleet.cluster("ap-south")
    async with http.get(f"{ap_south.prometheus_url}/-/healthy") as resp:
        assert resp.status == 200

    await fleet.outage("ap-south")

    with pytest.raises(aiohttp.ClientError):
        async with http.get(f"{ap_south.prometheus_url}/-/healthy") as resp:
            pass


async def test_outage_cuts_open_watches(fleet: SimFleet, http: aiohttp.ClientSession) -> None:
    eu_west = fleet.cluster("eu-west")
    url = f"{eu_west.kube_url}/api/v1/services?watch=true&timeoutSeconds=30"
    lines: list[bytes] = []

    async def watch() -> None:
        async with http.get(url, headers=_auth(eu_west)) as resp:
            assert resp.status == 200
            async for line in resp.content:
                lines.append(line)

    watching = asyncio.create_task(watch())
    await eventually(lambda: eu_west.gate.open_streams == 1 and len(lines) == 3)
    await fleet.outage("eu-west")

    # the stream ends (or breaks) at once instead of running 30 s
    async with asyncio.timeout(5):
        with contextlib.suppress(aiohttp.ClientError):
            await watching
    assert eu_west.gate.open_streams == 0


async def test_hang_holds_requests_until_recovery(
    fleet: SimFleet, http: aiohttp.ClientSession
) -> None:
    eu_west = fleet.cluster("eu-west")
    await fleet.outage("eu-west", mode="hang")

    assert not await _refused(eu_west.kube_port)  # connections are accepted...
    with pytest.raises(TimeoutError):  # ...but nothing answers
        async with asyncio.timeout(0.3):
            await http.get(f"{eu_west.prometheus_url}/-/ready")
    held = asyncio.create_task(http.get(f"{eu_west.kube_url}/version", headers=_auth(eu_west)))
    await asyncio.sleep(0.1)
    assert not held.done()

    await fleet.recover("eu-west")

    async with asyncio.timeout(5):
        resp = await held
    assert resp.status == 200
    assert (await resp.json())["major"] == "1"
    resp.release()


async def test_hang_then_refuse_drops_held_requests(
    fleet: SimFleet, http: aiohttp.ClientSession
) -> None:
    eu_west = fleet.cluster("eu-west")
    await fleet.outage("eu-west", mode="hang")
    held = asyncio.create_task(http.get(f"{eu_west.prometheus_url}/-/ready"))
    await asyncio.sleep(0.1)

    await fleet.outage("eu-west")

    with pytest.raises(aiohttp.ClientError):
        async with asyncio.timeout(5):
            await held
    assert await _refused(eu_west.prom_port)


async def test_stop_ends_held_requests_and_open_watches_promptly() -> None:
    fleet = SimFleet.default(clusters=2)
    await fleet.start()
    eu_west, us_east = fleet.cluster("eu-west"), fleet.cluster("us-east")
    connector = aiohttp.TCPConnector(ssl=fleet.client_ssl_context())
    async with aiohttp.ClientSession(connector=connector) as http:
        watch = f"{us_east.kube_url}/api/v1/nodes?watch=true"
        watching = asyncio.create_task(http.get(watch, headers=_auth(us_east)))
        await eventually(lambda: us_east.gate.open_streams == 1)
        await fleet.outage("eu-west", mode="hang")
        held = asyncio.create_task(http.get(f"{eu_west.prometheus_url}/-/ready"))
        await asyncio.sleep(0.05)

        async with asyncio.timeout(3):
            await fleet.stop()

        with pytest.raises(aiohttp.ClientError):
            async with asyncio.timeout(3):
                await held
        async with asyncio.timeout(3):
            resp = await watching
            with contextlib.suppress(aiohttp.ClientError):
                await resp.read()
            resp.release()
    assert us_east.gate.open_streams == 0


async def test_nothing_else_can_take_a_port_during_an_outage(fleet: SimFleet) -> None:
    port = fleet.cluster("eu-west").kube_port
    await fleet.outage("eu-west")

    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", port or 0))


async def test_a_cluster_down_before_start_stays_down_until_recovered() -> None:
    fleet = SimFleet.default(clusters=1, tls=False)
    await fleet.outage("eu-west")
    async with fleet:
        cluster = fleet.cluster("eu-west")
        assert await _refused(cluster.kube_port)
        assert await _refused(cluster.prom_port)

        await fleet.recover("eu-west")

        async with aiohttp.ClientSession() as http, http.get(f"{cluster.kube_url}/livez") as resp:
            assert resp.status == 401  # listening again; no token given
