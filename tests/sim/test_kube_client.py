"""The official `kubernetes` client against the simulated API servers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from mcobs.sim import SimFleet
from tests.sim.helpers import eventually


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(kubeconfig), context="eu-west") as api:
        yield api


async def test_lists_services_with_their_exported_annotation_and_addresses(
    api: client.ApiClient,
) -> None:
    services = await asyncio.to_thread(client.CoreV1Api(api).list_service_for_all_namespaces)

    by_name = {(s.metadata.namespace, s.metadata.name): s for s in services.items}
    assert set(by_name) == {("default", "web"), ("default", "api"), ("kube-system", "internal")}
    web = by_name["default", "web"]
    assert web.metadata.annotations == {"mcobs.io/global": "true"}
    assert web.spec.type == "LoadBalancer"
    assert [(p.name, p.port, p.protocol) for p in web.spec.ports] == [("http", 80, "TCP")]
    assert [i.ip for i in web.status.load_balancer.ingress] == ["192.0.2.1", "2001:db8:1::1"]
    assert by_name["kube-system", "internal"].metadata.annotations is None
    assert int(services.metadata.resource_version) > 0


async def test_other_clusters_get_addresses_from_their_own_documentation_range(
    kubeconfig: Path,
) -> None:
    def first_ips(context: str) -> list[str]:
        with config.new_client_from_config(config_file=str(kubeconfig), context=context) as api:
            web = client.CoreV1Api(api).read_namespaced_service("web", "default")
            return [i.ip for i in web.status.load_balancer.ingress]

    assert await asyncio.to_thread(first_ips, "us-east") == ["198.51.100.1", "2001:db8:2::1"]
    assert await asyncio.to_thread(first_ips, "ap-south") == ["203.0.113.1", "2001:db8:3::1"]


async def test_lists_endpoint_slices_with_ready_conditions(api: client.ApiClient) -> None:
    slices = await asyncio.to_thread(
        client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces,
        label_selector="kubernetes.io/service-name=web",
    )

    (web,) = slices.items
    assert web.address_type == "IPv4"
    assert [e.conditions.ready for e in web.endpoints] == [True, True, True]
    assert [(p.name, p.port, p.protocol) for p in web.ports] == [("http", 8080, "TCP")]


async def test_lists_ready_nodes(api: client.ApiClient) -> None:
    nodes = await asyncio.to_thread(client.CoreV1Api(api).list_node)

    assert [n.metadata.name for n in nodes.items] == [f"eu-west-node-{i}" for i in (1, 2, 3)]
    for node in nodes.items:
        (ready,) = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready.status == "True"


async def test_reading_a_missing_service_is_a_404_status(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(client.CoreV1Api(api).read_namespaced_service, "nope", "default")

    assert caught.value.status == 404
    assert '"reason":"NotFound"' in caught.value.body


def _watch_until(
    stream_of: Any, want: Any, started: threading.Event | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    """Events of one watch up to and including the first for which `want(event)` holds."""
    seen: list[dict[str, Any]] = []
    w = watch.Watch()
    for event in w.stream(stream_of, timeout_seconds=10, **kwargs):
        seen.append(event)
        if started is not None:
            started.set()
        if want(event):
            w.stop()
    return seen


def _slice_with_ready(count: int) -> Any:
    def want(event: dict[str, Any]) -> bool:
        obj = event["object"]
        return (
            event["type"] == "MODIFIED" and sum(e.conditions.ready for e in obj.endpoints) == count
        )

    return want


async def test_watch_sees_endpoints_turn_unready_live(
    fleet: SimFleet, api: client.ApiClient
) -> None:
    discovery = client.DiscoveryV1Api(api)
    eu_west = fleet.cluster("eu-west")

    watching = asyncio.create_task(
        asyncio.to_thread(
            _watch_until,
            discovery.list_namespaced_endpoint_slice,
            _slice_with_ready(0),
            namespace="default",
        )
    )
    await eventually(lambda: eu_west.gate.open_streams == 1)
    fleet.set_ready("eu-west", "default", "web", 0)
    events = await asyncio.wait_for(watching, 10)

    assert [e["type"] for e in events[:2]] == ["ADDED", "ADDED"]  # api and web, from "0"
    assert events[-1]["object"].metadata.labels["kubernetes.io/service-name"] == "web"


async def test_watch_from_a_listed_version_replays_later_changes(
    fleet: SimFleet, api: client.ApiClient
) -> None:
    discovery = client.DiscoveryV1Api(api)
    listed = await asyncio.to_thread(discovery.list_endpoint_slice_for_all_namespaces)
    fleet.set_ready("eu-west", "default", "api", 1)

    events = await asyncio.to_thread(
        _watch_until,
        discovery.list_endpoint_slice_for_all_namespaces,
        _slice_with_ready(1),
        resource_version=listed.metadata.resource_version,
    )

    assert [e["type"] for e in events] == ["MODIFIED"]
    assert int(events[0]["object"].metadata.resource_version) > int(
        listed.metadata.resource_version
    )


async def test_watch_from_a_compacted_version_gets_410_expired(kubeconfig: Path) -> None:
    async with SimFleet.default(clusters=1, history=5) as small:
        path = small.write_kubeconfig(kubeconfig.parent / "small")
        for ready in (0, 1, 2, 3, 0, 1, 2):
            small.set_ready("eu-west", "default", "web", ready)

        def watch_from_1() -> None:
            with config.new_client_from_config(config_file=str(path), context="eu-west") as api:
                stream = watch.Watch().stream(
                    client.CoreV1Api(api).list_service_for_all_namespaces,
                    resource_version="1",
                    timeout_seconds=5,
                )
                next(iter(stream))

        with pytest.raises(ApiException) as caught:
            await asyncio.to_thread(watch_from_1)

    assert caught.value.status == 410
    assert "Expired" in str(caught.value.reason)


async def test_requests_without_the_token_get_401(fleet: SimFleet, kubeconfig: Path) -> None:
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), context="eu-west", client_configuration=configuration)
    configuration.api_key = {}
    with client.ApiClient(configuration) as anonymous, pytest.raises(ApiException) as caught:
        await asyncio.to_thread(client.CoreV1Api(anonymous).list_node)

    assert caught.value.status == 401
    assert '"kind":"Status"' in caught.value.body
    assert fleet.cluster("eu-west").token not in caught.value.body
