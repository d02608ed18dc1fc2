"""The simulated Prometheus API, through `prometheus_api_client` and plain HTTP."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

from mcobs.sim import SimFleet

HEALTH = "sum(up) / count(up)"


def _value(result: list[dict[str, object]]) -> float:
    (sample,) = result
    value = sample["value"]
    assert isinstance(value, list)
    return float(value[1])


async def test_health_ratio_is_one_then_drops_when_a_target_goes_down(fleet: SimFleet) -> None:
    with PrometheusConnect(fleet.cluster("eu-west").prometheus_url) as prom:
        before = await asyncio.to_thread(prom.custom_query, HEALTH)
        fleet.set_series("eu-west", "up", {"job": "apiserver", "instance": "apiserver:6443"}, 0)
        after = await asyncio.to_thread(prom.custom_query, HEALTH)
        avg = await asyncio.to_thread(prom.custom_query, "avg(up)")

    assert before[0]["metric"] == {}
    assert _value(before) == 1.0
    assert _value(after) == pytest.approx(0.8)  # 4 of 5 targets up
    assert _value(avg) == pytest.approx(0.8)


async def test_a_base_url_with_a_trailing_slash_works_as_with_prometheus(fleet: SimFleet) -> None:
    with PrometheusConnect(fleet.cluster("eu-west").prometheus_url + "/") as prom:
        result = await asyncio.to_thread(prom.custom_query, HEALTH)

    assert _value(result) == 1.0


async def test_a_pinned_expression_answers_its_value(fleet: SimFleet) -> None:
    expr = "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m]))"
    fleet.pin_query("us-east", expr, 0.25)
    with PrometheusConnect(fleet.cluster("us-east").prometheus_url) as prom:
        pinned = await asyncio.to_thread(prom.custom_query, expr)
    with (
        PrometheusConnect(fleet.cluster("eu-west").prometheus_url) as elsewhere,
        pytest.raises(PrometheusApiClientException, match="bad_data"),
    ):
        await asyncio.to_thread(elsewhere.custom_query, expr)  # not pinned there

    assert _value(pinned) == 0.25


async def test_bad_promql_is_a_400_bad_data(fleet: SimFleet) -> None:
    url = fleet.cluster("eu-west").prometheus_url
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/v1/query", params={"query": "sum(up"}) as resp,
    ):
        body = await resp.json()
        status = resp.status

    assert status == 400
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert "parse error" in body["error"]


async def test_post_form_query_with_time_and_a_range_query(fleet: SimFleet) -> None:
    url = fleet.cluster("ap-south").prometheus_url
    async with aiohttp.ClientSession() as http:
        form = {"query": "count by (job) (up)", "time": "1700000000"}
        async with http.post(f"{url}/api/v1/query", data=form) as resp:
            instant = await resp.json()
        params = {"query": "max(up)", "start": "1700000000", "end": "1700000060", "step": "30s"}
        async with http.get(f"{url}/api/v1/query_range", params=params) as resp:
            ranged = await resp.json()

    counts = {r["metric"]["job"]: r["value"] for r in instant["data"]["result"]}
    assert counts == {
        "apiserver": [1700000000, "1"],
        "kube-state-metrics": [1700000000, "1"],
        "node-exporter": [1700000000, "3"],
    }
    assert ranged["data"]["resultType"] == "matrix"
    assert ranged["data"]["result"][0]["values"] == [
        [1700000000, "1"],
        [1700000030, "1"],
        [1700000060, "1"],
    ]


async def test_metrics_buildinfo_and_health_endpoints(fleet: SimFleet) -> None:
    url = fleet.cluster("eu-west").prometheus_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics") as resp:
            exposition = await resp.text()
            content_type = resp.headers["Content-Type"]
        async with http.get(f"{url}/api/v1/status/buildinfo") as resp:
            build = await resp.json()
        async with http.get(f"{url}/-/healthy") as resp:
            healthy = resp.status
        async with http.get(f"{url}/-/ready") as resp:
            ready = resp.status

    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE up gauge" in exposition
    assert 'up{instance="apiserver:6443",job="apiserver"} 1' in exposition
    assert "# TYPE http_requests_total counter" in exposition
    assert build["status"] == "success" and build["data"]["version"]
    assert (healthy, ready) == (200, 200)
