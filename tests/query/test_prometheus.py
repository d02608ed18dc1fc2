"""The global query against real Prometheus servers, one per simulated cluster.

Each Prometheus (Debian's `prometheus`) scrapes its cluster's simulated `/metrics`
every second; eu-west's scrape adds a `cluster="k8s-eu"` target label, as some
fleets do. Answers through mcobs must equal each Prometheus' own answer with
`cluster` added (and eu-west's own label moved to `original_cluster`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_api_client import PrometheusConnect

from mcobs.query import Fanout, FanoutSettings, query_routes
from tests.prometheus_server import PrometheusFleet
from tests.redis_server import free_port

Client = TestClient[web.Request, web.Application]
CLUSTERS = ("ap-south", "eu-west", "us-east")


@pytest.fixture(scope="module")
def fleet() -> Iterator[PrometheusFleet]:
    with PrometheusFleet(3, labels={"eu-west": {"cluster": "k8s-eu"}}) as started:
        time.sleep(1.2)  # so that `settled()` falls after the first scrape
        yield started


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def client(fleet: PrometheusFleet, session: aiohttp.ClientSession) -> AsyncIterator[Client]:
    fanout = Fanout(session, fleet.prometheus_urls, settings=FanoutSettings(cluster_timeout=5))
    app = web.Application()
    app.add_routes(query_routes(fanout))
    async with TestClient(TestServer(app)) as started:
        yield started


def settled() -> str:
    """A moment whose samples every Prometheus has surely stored (scrapes every 1 s)."""
    return f"{time.time() - 1.1:.3f}"


def as_global(item: dict[str, Any], cluster: str) -> dict[str, Any]:
    metric = dict(item["metric"])
    if "cluster" in metric:
        metric["original_cluster"] = metric.pop("cluster")
    return {**item, "metric": {**metric, "cluster": cluster}}


async def direct(
    session: aiohttp.ClientSession, url: str, path: str, params: dict[str, str]
) -> Any:
    async with session.get(f"{url}/api/v1/{path}", params=params) as response:
        body = await response.json()
        assert body["status"] == "success", body
        return body["data"]


async def through_mcobs(client: Client, path: str, params: dict[str, str]) -> dict[str, Any]:
    response = await client.post(f"/api/v1/{path}", data=params)
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


def key(item: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(item["metric"].items())


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("query", {"query": "up"}),
        ("query", {"query": 'sum by (job) (up{job!="sim"})'}),
        ("query_range", {"query": "http_requests_total", "step": "1"}),
        ("query_range", {"query": "count(up) * 2", "step": "2s"}),
    ],
)
async def test_fanout_equals_each_prometheus_asked_directly(
    fleet: PrometheusFleet,
    session: aiohttp.ClientSession,
    client: Client,
    path: str,
    extra: dict[str, str],
) -> None:
    at = settled()
    params = (
        {**extra, "time": at}
        if path == "query"
        else {**extra, "start": str(float(at) - 10), "end": at}
    )
    body = await through_mcobs(client, path, params)
    assert "warnings" not in body
    expected = []
    for name, url in sorted(fleet.prometheus_urls().items()):
        data = await direct(session, url, path, params)
        expected += [as_global(item, name) for item in data["result"]]
    assert sorted(body["data"]["result"], key=key) == sorted(expected, key=key)
    assert {item["metric"]["cluster"] for item in body["data"]["result"]} == set(CLUSTERS)


async def test_cluster_matchers_prune_and_original_cluster_matches_the_local_label(
    fleet: PrometheusFleet, session: aiohttp.ClientSession, client: Client
) -> None:
    at = settled()
    body = await through_mcobs(
        client, "query", {"query": 'up{cluster="us-east", job="apiserver"}', "time": at}
    )
    us_east = fleet.prometheus_urls()["us-east"]
    own = await direct(session, us_east, "query", {"query": 'up{job="apiserver"}', "time": at})
    assert body["data"]["result"] == [as_global(item, "us-east") for item in own["result"]]

    body = await through_mcobs(
        client, "query", {"query": 'up{original_cluster="k8s-eu"}', "time": at}
    )
    assert {item["metric"]["cluster"] for item in body["data"]["result"]} == {"eu-west"}
    assert {item["metric"]["original_cluster"] for item in body["data"]["result"]} == {"k8s-eu"}


async def test_series_labels_and_metadata_for_grafana(client: Client) -> None:
    series = await through_mcobs(client, "series", {"match[]": 'up{job="apiserver"}'})
    assert sorted(s["cluster"] for s in series["data"]) == list(CLUSTERS)
    assert [s.get("original_cluster") for s in series["data"] if s["cluster"] == "eu-west"] == [
        "k8s-eu"
    ]

    labels = await through_mcobs(client, "labels", {})
    assert {"__name__", "cluster", "original_cluster", "job", "instance"} <= set(labels["data"])

    response = await client.get("/api/v1/label/job/values")
    assert {"apiserver", "node-exporter", "sim"} <= set((await response.json())["data"])
    response = await client.get(
        "/api/v1/label/cluster/values", params={"match[]": 'up{original_cluster="k8s-eu"}'}
    )
    assert (await response.json())["data"] == ["eu-west"]

    response = await client.get("/api/v1/metadata", params={"metric": "up"})
    assert (await response.json())["data"] == {"up": [{"type": "gauge", "help": "", "unit": ""}]}


async def test_prometheus_errors_and_unreachable_clusters(
    fleet: PrometheusFleet, session: aiohttp.ClientSession
) -> None:
    targets = {**fleet.prometheus_urls(), "zz-gone": f"http://127.0.0.1:{free_port()}"}
    app = web.Application()
    app.add_routes(query_routes(Fanout(session, lambda: targets)))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/v1/query", params={"query": "rate(up)"})
        body = await response.json()
        assert (response.status, body["errorType"]) == (400, "bad_data")
        assert "expected type range vector" in body["error"]

        body = await through_mcobs(client, "query", {"query": "count(up)"})
        assert sorted(s["metric"]["cluster"] for s in body["data"]["result"]) == list(CLUSTERS)
        assert body["warnings"] == ['cluster "zz-gone" failed: cannot connect: connection refused']


async def test_prometheus_api_client_uses_mcobs_as_one_prometheus(client: Client) -> None:
    with requests.Session() as http:
        url = str(client.make_url("")).rstrip("/")
        prom = PrometheusConnect(url=url, disable_ssl=True, session=http)
        result = await asyncio.to_thread(prom.custom_query, 'up{job="apiserver"}')
        assert sorted(item["metric"]["cluster"] for item in result) == list(CLUSTERS)
        assert "http_requests_total" in await asyncio.to_thread(prom.all_metrics)
