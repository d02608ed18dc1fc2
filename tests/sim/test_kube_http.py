"""The simulated Kubernetes API on the wire: discovery, Tables, selectors, watch events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from mcobs.sim import ServiceSpec, SimCluster, SimFleet, WatchSettings
from mcobs.sim.state import Port

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture
async def http(fleet: SimFleet) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=fleet.client_ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def _get(
    http: aiohttp.ClientSession, cluster: SimCluster, path: str, accept: str = "application/json"
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {cluster.token}", "Accept": accept}
    async with http.get(f"{cluster.kube_url}{path}", headers=headers) as resp:
        return resp.status, await resp.json()


async def _watch_lines(
    http: aiohttp.ClientSession, cluster: SimCluster, path: str, count: int
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {cluster.token}"}
    events: list[dict[str, Any]] = []
    async with http.get(f"{cluster.kube_url}{path}", headers=headers) as resp:
        assert resp.status == 200
        async for line in resp.content:
            events.append(json.loads(line))
            if len(events) == count:
                break
    return events


async def test_discovery_documents(fleet: SimFleet, http: aiohttp.ClientSession) -> None:
    eu_west = fleet.cluster("eu-west")

    _, api = await _get(http, eu_west, "/api")
    _, core = await _get(http, eu_west, "/api/v1")
    _, groups = await _get(http, eu_west, "/apis")
    _, disc = await _get(http, eu_west, "/apis/discovery.k8s.io/v1")
    _, version = await _get(http, eu_west, "/version")

    assert api["versions"] == ["v1"]
    assert {r["name"] for r in core["resources"]} == {"nodes", "services"}
    assert groups["groups"][0]["name"] == "discovery.k8s.io"
    assert disc["resources"][0]["kind"] == "EndpointSlice"
    assert version["gitVersion"].startswith("v1.32")


async def test_unknown_paths_answer_a_404_status(
    fleet: SimFleet, http: aiohttp.ClientSession
) -> None:
    status, body = await _get(http, fleet.cluster("eu-west"), "/apis/apps/v1")

    assert status == 404
    assert (body["kind"], body["code"], body["reason"]) == ("Status", 404, "NotFound")


async def test_a_table_for_kubectl_get(fleet: SimFleet, http: aiohttp.ClientSession) -> None:
    _, table = await _get(http, fleet.cluster("eu-west"), "/api/v1/services", accept=TABLE)

    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == [
        "Name",
        "Type",
        "Cluster-IP",
        "External-IP",
        "Port(s)",
    ]
    web = next(r for r in table["rows"] if r["cells"][0] == "web")
    assert web["cells"][3] == "192.0.2.1,2001:db8:1::1"
    assert web["object"]["kind"] == "PartialObjectMetadata"
    assert web["object"]["metadata"]["namespace"] == "default"


async def test_label_and_field_selectors(fleet: SimFleet, http: aiohttp.ClientSession) -> None:
    eu_west = fleet.cluster("eu-west")
    slices = "/apis/discovery.k8s.io/v1/endpointslices"

    _, by_label = await _get(
        http, eu_west, f"{slices}?labelSelector=kubernetes.io/service-name%3Dapi"
    )
    _, by_field = await _get(http, eu_west, "/api/v1/services?fieldSelector=metadata.name%3Dweb")
    _, not_default = await _get(
        http, eu_west, "/api/v1/services?fieldSelector=metadata.namespace!%3Ddefault"
    )
    status, bad = await _get(http, eu_west, "/api/v1/services?fieldSelector=spec.type%3Dx")

    assert [s["metadata"]["name"] for s in by_label["items"]] == [
        eu_west.endpoint_slice("default", "api").meta.name  # type: ignore[union-attr]
    ]
    assert [s["metadata"]["name"] for s in by_field["items"]] == ["web"]
    assert [s["metadata"]["name"] for s in not_default["items"]] == ["internal"]
    assert (status, bad["reason"]) == (400, "BadRequest")


async def test_watch_streams_deletions_and_new_services(
    fleet: SimFleet, http: aiohttp.ClientSession
) -> None:
    eu_west = fleet.cluster("eu-west")
    _, listed = await _get(http, eu_west, "/api/v1/namespaces/default/services")
    rv = listed["metadata"]["resourceVersion"]
    eu_west.delete_service("default", "api")
    eu_west.put_service(ServiceSpec("default", "cart", ports=(Port("http", 8080),)))

    events = await _watch_lines(
        http, eu_west, f"/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}", 2
    )

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("DELETED", "api"),
        ("ADDED", "cart"),
    ]
    assert events[0]["object"]["kind"] == "Service"
    assert (
        int(events[1]["object"]["metadata"]["resourceVersion"]) == eu_west.kube.resource_version - 1
    )


async def test_expired_watch_answers_an_error_event_with_a_410_status(
    http: aiohttp.ClientSession,
) -> None:
    async with SimFleet.default(clusters=1, history=2) as small:
        cluster = small.cluster("eu-west")
        connector = aiohttp.TCPConnector(ssl=small.client_ssl_context())
        async with aiohttp.ClientSession(connector=connector) as own:
            (event,) = await _watch_lines(
                own, cluster, "/api/v1/nodes?watch=true&resourceVersion=1", 1
            )

    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")


async def test_bookmarks_when_allowed() -> None:
    async with SimFleet.default(clusters=1, watch=WatchSettings(bookmark_interval=0.05)) as fleet:
        cluster = fleet.cluster("eu-west")
        connector = aiohttp.TCPConnector(ssl=fleet.client_ssl_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            rv = cluster.kube.resource_version
            path = f"/api/v1/nodes?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
            (event,) = await _watch_lines(http, cluster, path, 1)

    assert event["type"] == "BOOKMARK"
    assert event["object"]["metadata"] == {"resourceVersion": str(rv)}


async def test_watch_ends_after_its_timeout(fleet: SimFleet, http: aiohttp.ClientSession) -> None:
    eu_west = fleet.cluster("eu-west")
    rv = eu_west.kube.resource_version

    events = await _watch_lines(
        http, eu_west, f"/api/v1/nodes?watch=true&resourceVersion={rv}&timeoutSeconds=0", 99
    )

    assert events == []
