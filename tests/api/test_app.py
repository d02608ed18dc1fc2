from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mcobs.answer import ZonePlan, ZonePolicy, build_zone
from mcobs.api.app import make_app
from mcobs.model import EMPTY_SNAPSHOT, ApiProbe, CatalogSnapshot, Health, HealthState
from mcobs.zone import Nameserver
from tests.core.factories import report, service, snapshot

POLICY = ZonePolicy(
    origin="global.example.com.", nameservers=(Nameserver("ns1.global.example.com."),)
)
NOW = 1010.0


@dataclass
class FakeHub:
    snapshot: CatalogSnapshot = EMPTY_SNAPSHOT
    ready: bool = False
    stale_after: float = 30.0

    @property
    def plan(self) -> ZonePlan:
        return build_zone(self.snapshot, POLICY, NOW)

    def now(self) -> float:
        return NOW

    def locate(self, address: object) -> str | None:
        return "europe" if str(address).startswith("10.") else None


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
async def client(hub: FakeHub) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(make_app(hub))) as test_client:
        yield test_client


async def test_readyz_waits_for_the_first_snapshot(client: TestClient, hub: FakeHub) -> None:  # type: ignore[type-arg]
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    hub.ready = True
    assert (await client.get("/readyz")).status == 200


async def test_clusters_show_health_reasons_and_probe(client: TestClient, hub: FakeHub) -> None:  # type: ignore[type-arg]
    down = Health(0.0, HealthState.DOWN, ("API unreachable (2 failed probes): cannot connect",))
    lost = replace(report("us-east", health=down), probe=ApiProbe(False, error="cannot connect"))
    hub.snapshot = snapshot(report("eu-west"), lost)
    body = await (await client.get("/api/v1/clusters")).json()
    by_name = {c["name"]: c for c in body["clusters"]}
    assert by_name["eu-west"]["health"]["state"] == "healthy"
    assert by_name["us-east"]["health"] == {
        "state": "down",
        "score": 0.0,
        "reasons": ["API unreachable (2 failed probes): cannot connect"],
    }
    assert by_name["us-east"]["api"]["error"] == "cannot connect"
    assert body["catalog_version"] == 7


async def test_service_detail_explains_each_cluster(client: TestClient, hub: FakeHub) -> None:  # type: ignore[type-arg]
    hub.snapshot = snapshot(
        report("eu-west", (service("eu-west", ("192.0.2.1",), ready=0),)),
        report("us-east", (service("us-east", ("198.51.100.1",)),)),
    )
    listing = await (await client.get("/api/v1/services")).json()
    assert [s["name"] for s in listing["services"]] == ["web"]
    detail = await (await client.get("/api/v1/services/default/web")).json()
    assert detail["answer"] == ["198.51.100.1"]
    assert detail["dns_name"] == "web.default.global.example.com."
    reasons = {c["cluster"]: (c["in_answer"], c["reason"]) for c in detail["clusters"]}
    assert reasons["eu-west"] == (False, "no ready endpoints (0 of 3)")
    assert reasons["us-east"][0] is True


async def test_unknown_service_and_path_are_json_404(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/api/v1/services/default/nope")
    assert response.status == 404
    assert await response.json() == {"error": "no exported service default/nope"}
    response = await client.get("/api/v1/nothing")
    assert response.status == 404
    assert "error" in await response.json()


async def test_resolve_says_what_a_client_gets_and_why(client: TestClient, hub: FakeHub) -> None:  # type: ignore[type-arg]
    hub.snapshot = snapshot(
        report("eu-west", (service("eu-west", ("192.0.2.1",), ready=0),)),
        report("us-east", (service("us-east", ("198.51.100.1",)),), weight=3.0),
        report("ap-south", (service("ap-south", ("203.0.113.1",)),)),
    )
    body = await (
        await client.get(
            "/api/v1/resolve?name=WEB.default.global.example.com&type=A&client=10.1.2.3"
        )
    ).json()
    assert body["rcode"] == "NOERROR" and body["client_region"] == "europe"
    assert body["first_answer_shares"] == [
        {"record": "198.51.100.1", "share": 0.75},
        {"record": "203.0.113.1", "share": 0.25},
    ]
    reasons = {c["cluster"]: c["reason"] for c in body["service"]["clusters"]}
    assert reasons["eu-west"] == "no ready endpoints (0 of 3)"
    missing = await (
        await client.get("/api/v1/resolve?name=nope.default.global.example.com")
    ).json()
    assert missing["rcode"] == "NXDOMAIN"
    outside = await (await client.get("/api/v1/resolve?name=example.org")).json()
    assert outside["rcode"] == "REFUSED"
    bad = await client.get("/api/v1/resolve?type=TXT&client=nope")
    assert bad.status == 400
    assert (await bad.json())["problems"] == [
        "name: a DNS name is required",
        "type: one of A, AAAA, SRV, CNAME, SOA, NS",
        "client: an IP address",
    ]
