"""The control API mounted on a hub application, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mcobs.sim import SimFleet, add_sim_routes

BASE = "/api/v1/sim/clusters"


@pytest.fixture
async def control(fleet: SimFleet) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    add_sim_routes(app, fleet)
    async with TestClient(TestServer(app)) as client:
        yield client


Client = TestClient[web.Request, web.Application]


async def _call(
    client: Client, method: str, path: str, body: Any = None, raw: str | None = None
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    async with client.request(method, path, **kwargs) as resp:
        return resp.status, await resp.json()


def _service(state: dict[str, Any], cluster: str, namespace: str, name: str) -> dict[str, Any]:
    (found,) = [
        s
        for c in state["clusters"]
        if c["name"] == cluster
        for s in c["services"]
        if (s["namespace"], s["name"]) == (namespace, name)
    ]
    return found


async def test_lists_every_cluster_without_tokens(control: Client, fleet: SimFleet) -> None:
    status, state = await _call(control, "GET", BASE)

    assert status == 200
    assert [c["name"] for c in state["clusters"]] == ["eu-west", "us-east", "ap-south"]
    assert [c["region"] for c in state["clusters"]] == ["europe-west", "us-east", "asia-south"]
    web_ = _service(state, "eu-west", "default", "web")
    assert web_["ready"] == web_["endpoints"] == 3
    assert web_["annotations"] == {"mcobs.io/global": "true"}
    assert all(c.token not in str(state) for c in fleet.clusters)


async def test_setting_ready_endpoints(control: Client, fleet: SimFleet) -> None:
    rv = fleet.cluster("eu-west").kube.resource_version

    status, body = await _call(
        control, "POST", f"{BASE}/eu-west/services/default/web/ready", {"ready": 1}
    )

    assert status == 200
    assert (body["ready"], body["endpoints"]) == (1, 3)
    assert fleet.cluster("eu-west").kube.resource_version == rv + 1


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            f"{BASE}/nowhere/services/default/web/ready",
            {"ready": 1},
            404,
            "unknown cluster 'nowhere'",
        ),
        (
            f"{BASE}/eu-west/services/default/nope/ready",
            {"ready": 1},
            404,
            "default/nope not found",
        ),
        (f"{BASE}/eu-west/services/default/web/ready", {"ready": -1}, 400, "ready: -1 is negative"),
        (f"{BASE}/eu-west/services/default/web/ready", {"ready": 4}, 400, "more than the 3"),
        (f"{BASE}/eu-west/services/default/web/ready", {"ready": "2"}, 400, "not a whole number"),
        (f"{BASE}/eu-west/services/default/web/ready", {"ready": True}, 400, "not a whole number"),
        (
            f"{BASE}/eu-west/services/default/web/ready",
            {"ready": 1, "x": 1},
            400,
            "x: unknown field",
        ),
        (f"{BASE}/eu-west/services/default/web/ready", [1], 400, "body must be a JSON object"),
        (f"{BASE}/eu-west/nodes/nope/ready", {"ready": False}, 404, "node 'nope' not found"),
        (f"{BASE}/eu-west/nodes/eu-west-node-1/ready", {"ready": 0}, 400, "not true or false"),
        (f"{BASE}/eu-west/outage", {"mode": "explode"}, 400, "mode: 'explode'"),
        (f"{BASE}/eu-west/prometheus", {"value": 1}, 400, "expr: required"),
        (f"{BASE}/eu-west/prometheus", {"expr": "up", "value": "x"}, 400, "not a number"),
    ],
)
async def test_bad_input_is_refused_with_a_reason_and_changes_nothing(
    control: Client, fleet: SimFleet, path: str, body: Any, status: int, message: str
) -> None:
    before = fleet.describe()

    got, answer = await _call(control, "POST", path, body)

    assert got == status
    assert message in answer["error"]
    assert fleet.describe() == before


async def test_invalid_json_is_a_400(control: Client) -> None:
    status, body = await _call(
        control, "POST", f"{BASE}/eu-west/services/default/web/ready", raw="{ready: 1"
    )

    assert status == 400
    assert "not valid JSON" in body["error"]


async def test_every_problem_of_a_service_is_reported_at_once(
    control: Client, fleet: SimFleet
) -> None:
    body = {
        "type": "Weird",
        "ports": [{"name": "http", "port": 70000, "protocol": "TCP"}],
        "addresses": ["999.1.1.1"],
    }

    status, answer = await _call(control, "PUT", f"{BASE}/eu-west/services/default/Bad_Name", body)

    assert status == 400
    assert len(answer["reasons"]) == 4
    assert "name 'Bad_Name' is not a DNS-1035 label" in answer["reasons"]
    assert len(fleet.cluster("eu-west").services()) == 3


async def test_add_update_and_delete_a_service(control: Client, fleet: SimFleet) -> None:
    path = f"{BASE}/us-east/services/shop/cart"
    spec = {
        "annotations": {"mcobs.io/global": "true", "mcobs.io/ttl": "30"},
        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
        "addresses": ["198.51.100.200"],
        "hostnames": ["cart.lb.example.com"],
        "endpoints": 5,
        "ready": 4,
    }

    status, added = await _call(control, "PUT", path, spec)
    assert status == 200
    assert (added["ready"], added["endpoints"]) == (4, 5)
    assert added["addresses"] == ["198.51.100.200"]

    status, updated = await _call(control, "PUT", path, {**spec, "addresses": ["198.51.100.201"]})
    assert status == 200
    assert updated["addresses"] == ["198.51.100.201"]
    assert updated["ready"] == 4  # kept

    status, deleted = await _call(control, "DELETE", path)
    assert status == 200
    assert deleted["deleted"] is True
    assert ("shop", "cart") not in {
        (v.namespace, v.name) for v in fleet.cluster("us-east").services()
    }


async def test_node_readiness_and_prometheus_controls(control: Client, fleet: SimFleet) -> None:
    status, _ = await _call(
        control, "POST", f"{BASE}/ap-south/nodes/ap-south-node-3/ready", {"ready": False}
    )
    assert status == 200
    assert [n.ready for n in fleet.cluster("ap-south").nodes()] == [True, True, False]

    series = [
        {"name": "up", "labels": {"job": "apiserver", "instance": "apiserver:6443"}, "value": 0}
    ]
    status, _ = await _call(control, "POST", f"{BASE}/ap-south/prometheus", {"series": series})
    assert status == 200
    assert fleet.cluster("ap-south").series.value("up", series[0]["labels"]) == 0  # type: ignore[arg-type]

    status, body = await _call(
        control, "POST", f"{BASE}/ap-south/prometheus", {"expr": "my_slo", "value": 0.2}
    )
    assert (status, body["pins"]) == (200, {"my_slo": 0.2})
    status, body = await _call(
        control, "POST", f"{BASE}/ap-south/prometheus", {"expr": "my_slo", "unpin": True}
    )
    assert (status, body["pins"]) == (200, {})


async def test_outage_and_recover_over_http(control: Client, fleet: SimFleet) -> None:
    status, body = await _call(control, "POST", f"{BASE}/us-east/outage", {"mode": "hang"})
    assert (status, body["mode"]) == (200, "hang")

    status, body = await _call(control, "POST", f"{BASE}/us-east/outage")
    assert (status, body["mode"]) == (200, "refuse")

    status, body = await _call(control, "POST", f"{BASE}/us-east/recover")
    assert (status, body["mode"]) == (200, "up")
    assert fleet.cluster("us-east").gate.mode == "up"
