"""The global query over HTTP, fanned out to simulated clusters' Prometheus APIs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mcobs.api.app import HubView, make_app
from mcobs.query import BUILD_INFO, Fanout, FanoutSettings, query_routes
from mcobs.sim import SimFleet

NOW = 1_700_000_000.0
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    async with SimFleet.default(clusters=3, tls=False) as started:
        yield started


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


class _Serve:
    def __init__(self, fleet: SimFleet, session: aiohttp.ClientSession) -> None:
        self.fleet, self.session = fleet, session

    def __call__(self, **settings: Any) -> Client:
        fanout = Fanout(
            self.session,
            self.fleet.prometheus_urls,
            settings=FanoutSettings(**{"cluster_timeout": 5.0, "deadline": 10.0, **settings}),
            clock=lambda: NOW,
        )
        app = web.Application()
        app.add_routes(query_routes(fanout))
        return TestClient(TestServer(app))


@pytest.fixture
def serve(fleet: SimFleet, session: aiohttp.ClientSession) -> _Serve:
    return _Serve(fleet, session)


@pytest.fixture
async def client(serve: _Serve) -> AsyncIterator[Client]:
    async with serve() as started:
        yield started


async def query(client: Client, expr: str, **params: str) -> tuple[int, dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": expr, **params})
    return response.status, await response.json()


def clusters_of(body: dict[str, Any]) -> list[str]:
    return sorted({item["metric"]["cluster"] for item in body["data"]["result"]})


async def test_every_series_of_every_cluster_comes_back_labelled_with_its_cluster(
    client: Client, fleet: SimFleet, session: aiohttp.ClientSession
) -> None:
    status, body = await query(client, "up")
    assert status == 200
    assert "warnings" not in body
    got = body["data"]["result"]
    expected = []
    for name, url in sorted(fleet.prometheus_urls().items()):
        params = {"query": "up", "time": str(NOW)}
        async with session.get(f"{url}/api/v1/query", params=params) as direct:
            for item in (await direct.json())["data"]["result"]:
                expected.append({**item, "metric": {**item["metric"], "cluster": name}})
    assert got == expected
    assert len(got) == 15
    assert {item["value"][0] for item in got} == {NOW}  # one instant for every cluster


async def test_a_series_own_cluster_label_is_kept_as_original_cluster(
    client: Client, fleet: SimFleet
) -> None:
    fleet.set_series("us-east", "kube_info", {"cluster": "k8s-prod"}, 1)
    _, body = await query(client, "kube_info")
    assert body["data"]["result"] == [
        {
            "metric": {
                "__name__": "kube_info",
                "cluster": "us-east",
                "original_cluster": "k8s-prod",
            },
            "value": [NOW, "1"],
        }
    ]
    _, body = await query(client, 'kube_info{original_cluster="k8s-prod", cluster="us-east"}')
    assert len(body["data"]["result"]) == 1


@pytest.mark.parametrize(
    ("expr", "clusters"),
    [
        ('up{cluster="eu-west"}', ["eu-west"]),
        ('up{cluster=~"eu-west|ap-south"}', ["ap-south", "eu-west"]),
        ('sum by (job) (up{cluster!="us-east"})', ["ap-south", "eu-west"]),
    ],
)
async def test_a_cluster_matcher_prunes_the_other_clusters(
    client: Client, fleet: SimFleet, expr: str, clusters: list[str]
) -> None:
    await fleet.outage("us-east", mode="hang")  # would hold an un-pruned query for 5 s
    started = time.monotonic()
    status, body = await query(client, expr)
    assert time.monotonic() - started < 2
    assert status == 200
    assert "warnings" not in body
    assert clusters_of(body) == clusters


async def test_a_cluster_matcher_on_one_selector_only_still_asks_everyone(
    client: Client, fleet: SimFleet
) -> None:
    await fleet.outage("us-east")
    status, body = await query(client, 'up{cluster="eu-west"} + up')
    assert status == 200
    assert clusters_of(body) == ["eu-west"]  # the other clusters answer, with nothing
    assert body["warnings"] == ['cluster "us-east" failed: cannot connect: connection refused']


async def test_partial_response_names_the_failed_cluster_or_fails_the_query(
    client: Client, fleet: SimFleet
) -> None:
    await fleet.outage("ap-south")
    status, body = await query(client, "sum(up)")
    assert status == 200
    assert clusters_of(body) == ["eu-west", "us-east"]
    assert len(body["warnings"]) == 1
    assert body["warnings"][0].startswith('cluster "ap-south" failed: cannot connect')

    response = await client.post(
        "/api/v1/query", data={"query": "sum(up)", "partial_response": "false"}
    )
    body = await response.json()
    assert response.status == 503
    assert body["status"] == "error"
    assert body["errorType"] == "unavailable"
    assert body["error"].startswith('1 of 3 clusters failed: "ap-south": cannot connect')


async def test_a_hanging_cluster_times_out_and_the_rest_still_answer(
    serve: _Serve, fleet: SimFleet
) -> None:
    await fleet.outage("eu-west", mode="hang")
    async with serve(cluster_timeout=0.3) as client:
        started = time.monotonic()
        status, body = await query(client, "up")
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5
    assert status == 200
    assert clusters_of(body) == ["ap-south", "us-east"]
    assert body["warnings"] == ['cluster "eu-west" failed: timed out after 0.3s']


async def test_the_deadline_bounds_the_whole_query(serve: _Serve, fleet: SimFleet) -> None:
    await fleet.outage("eu-west", mode="hang")
    await fleet.outage("us-east", mode="hang")
    async with serve(cluster_timeout=10, deadline=0.4) as client:
        started = time.monotonic()
        status, body = await query(client, "up", partial_response="false")
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 1.5
        assert (status, body["errorType"]) == (503, "timeout")
        assert body["error"] == '2 of 3 clusters failed: "eu-west", "us-east": timed out after 0.4s'

        # The request's own timeout shortens the deadline too.
        started = time.monotonic()
        status, body = await query(client, "up", timeout="200ms")
        assert 0.2 <= time.monotonic() - started < 1.0
        assert status == 200
        assert clusters_of(body) == ["ap-south"]


async def test_range_queries_post_and_get(client: Client) -> None:
    form = {"query": "sum by (job) (up)", "start": "1000", "end": "1030", "step": "15s"}
    response = await client.post("/api/v1/query_range", data=form)
    assert response.status == 200
    body = await response.json()
    assert body["data"]["resultType"] == "matrix"
    node_exporter = [s for s in body["data"]["result"] if s["metric"]["job"] == "node-exporter"]
    assert node_exporter == [
        {
            "metric": {"cluster": c, "job": "node-exporter"},
            "values": [[1000, "3"], [1015, "3"], [1030, "3"]],
        }
        for c in ("ap-south", "eu-west", "us-east")
    ]
    response = await client.get("/api/v1/query_range", params=form)
    assert await response.json() == body


async def test_a_scalar_from_every_cluster_becomes_a_vector_by_cluster(client: Client) -> None:
    _, body = await query(client, "1 + 1")
    assert body["data"] == {
        "resultType": "vector",
        "result": [
            {"metric": {"cluster": c}, "value": [NOW, "2"]}
            for c in ("ap-south", "eu-west", "us-east")
        ],
    }


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/query", {}, 'invalid parameter "query": query must not be empty'),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "10", "end": "5", "step": "1"},
            'invalid parameter "end": end timestamp must not be before start time',
        ),
        ("/api/v1/series", {}, "no match[] parameter provided"),
        ("/api/v1/label/a-b/values", {}, 'invalid label name: "a-b"'),
    ],
)
async def test_bad_requests_get_prometheus_errors(
    client: Client, path: str, params: dict[str, str], message: str
) -> None:
    response = await client.get(path, params=params)
    assert response.status == 400
    assert await response.json() == {"status": "error", "errorType": "bad_data", "error": message}


async def test_a_query_every_cluster_rejects_is_a_bad_query(client: Client) -> None:
    status, body = await query(client, "rate(up[5m])")  # the simulators know no rate()
    assert (status, body["errorType"]) == (400, "bad_data")
    assert body["error"].startswith(
        '3 of 3 clusters failed: "ap-south", "eu-west", "us-east": bad_data: 1:1: parse error'
    )


async def test_no_cluster_answers(client: Client, fleet: SimFleet) -> None:
    for name in fleet.names:
        await fleet.outage(name)
    status, body = await query(client, "up")
    assert (status, body["errorType"]) == (503, "unavailable")


async def test_label_values_for_grafana_variables(client: Client, fleet: SimFleet) -> None:
    async def values(name: str, **params: str) -> Any:
        response = await client.get(f"/api/v1/label/{name}/values", params=params)
        assert response.status == 200
        return (await response.json())["data"]

    fleet.set_series("us-east", "kube_info", {"cluster": "k8s-prod"}, 1)
    assert await values("job") == ["apiserver", "kube-state-metrics", "node-exporter"]
    assert await values("cluster") == ["ap-south", "eu-west", "us-east"]
    assert await values("cluster", **{"match[]": 'up{cluster=~"eu-.*|us-.*"}'}) == [
        "eu-west",
        "us-east",
    ]
    assert await values("original_cluster") == ["k8s-prod"]
    assert "kube_info" in await values("__name__")


async def test_buildinfo_and_exemplars(client: Client) -> None:
    response = await client.get("/api/v1/status/buildinfo")
    assert await response.json() == {"status": "success", "data": BUILD_INFO}
    response = await client.post("/api/v1/query_exemplars", data={"query": "up"})
    assert await response.json() == {"status": "success", "data": []}


async def test_no_configured_cluster_says_so(session: aiohttp.ClientSession) -> None:
    app = web.Application()
    app.add_routes(query_routes(Fanout(session, dict)))
    async with TestClient(TestServer(app)) as client:
        status, body = await query(client, "up")
    assert status == 200
    assert body == {
        "status": "success",
        "data": {"resultType": "vector", "result": []},
        "warnings": ["no cluster with a Prometheus URL is configured"],
    }


async def test_mounted_in_the_mcobs_api(fleet: SimFleet, session: aiohttp.ClientSession) -> None:
    fanout = Fanout(session, fleet.prometheus_urls)
    app = make_app(cast(HubView, object()), query_routes(fanout))
    async with TestClient(TestServer(app)) as client:
        status, body = await query(client, 'up{cluster="eu-west"}')
        assert status == 200
        assert clusters_of(body) == ["eu-west"]
        status, body = await query(client, "")
        assert (status, body["errorType"]) == (400, "bad_data")
