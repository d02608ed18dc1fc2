"""The whole pipeline: simulated clusters -> collectors -> Redis -> DNS over UDP and TCP."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import aiohttp
import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype

from mcobs.catalog.redis import RedisCatalog
from mcobs.config import Settings
from mcobs.hub import Hub
from mcobs.sim.control import sim_routes
from mcobs.sim.fleet import SimFleet
from tests.redis_server import RedisServer

WEB = "web.default.global.example.com."
API = "api.default.global.example.com."
_prefixes = itertools.count()


async def ask(port: int, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=2)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)


async def addresses(port: int, name: str, *, tcp: bool = False) -> set[str]:
    response = await ask(port, name, tcp=tcp)
    return {rr.to_text() for rrset in response.answer for rr in rrset}


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 15.0) -> float:
    """Seconds until `check` holds; fails the test after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {limit}s")


def redis_store(server: RedisServer) -> RedisCatalog:
    return RedisCatalog.from_url(server.url, prefix=f"e2e{next(_prefixes)}")


def lb_address(fleet: SimFleet, cluster: str, name: str = "web") -> str:
    service = next(s for s in fleet.cluster(cluster).services() if s.name == name)
    return service.addresses[0]


async def test_outage_and_unready_endpoints_change_answers_and_come_back(
    fleet: SimFleet, settings: Settings, redis_server: RedisServer
) -> None:
    store = redis_store(redis_server)
    everyone = {lb_address(fleet, c) for c in fleet.names}
    try:
        async with Hub(settings, store) as hub:
            port = hub.dns_port

            async def web_is(expected: set[str]) -> bool:
                return await addresses(port, WEB) == expected

            await eventually(lambda: web_is(everyone))
            assert await addresses(port, WEB, tcp=True) == everyone

            us_east = lb_address(fleet, "us-east")
            await fleet.outage("us-east")
            await eventually(lambda: web_is(everyone - {us_east}))
            assert await addresses(port, WEB, tcp=True) == everyone - {us_east}
            await fleet.recover("us-east")
            await eventually(lambda: web_is(everyone))

            eu_west = lb_address(fleet, "eu-west")
            api_everyone = {lb_address(fleet, c, "api") for c in fleet.names}
            fleet.set_ready("eu-west", "default", "web", 0)
            await eventually(lambda: web_is(everyone - {eu_west}))
            assert await addresses(port, API) == api_everyone  # only web changed
            fleet.set_ready("eu-west", "default", "web", 3)
            await eventually(lambda: web_is(everyone))
    finally:
        await store.close()


async def test_srv_targets_resolve_in_the_zone(
    fleet: SimFleet, settings: Settings, redis_server: RedisServer
) -> None:
    store = redis_store(redis_server)
    try:
        async with Hub(settings, store) as hub:
            port = hub.dns_port
            await eventually(lambda: _srv_count(port, 3))
            response = await ask(port, "_http._tcp." + WEB, "SRV", tcp=True)
            targets = {rr.target.to_text() for rrset in response.answer for rr in rrset}
            assert targets == {f"{c}.{WEB}" for c in fleet.names}
            for target in targets:
                assert await addresses(port, target)
    finally:
        await store.close()


async def _srv_count(port: int, count: int) -> bool:
    response = await ask(port, "_http._tcp." + WEB, "SRV")
    return sum(len(rrset) for rrset in response.answer) == count


async def test_other_replicas_follow_and_a_restart_serves_from_redis_before_collecting(
    fleet: SimFleet, settings: Settings, redis_server: RedisServer
) -> None:
    prefix = f"e2e{next(_prefixes)}"
    collecting = RedisCatalog.from_url(redis_server.url, prefix=prefix)
    following = RedisCatalog.from_url(redis_server.url, prefix=prefix)
    everyone = {lb_address(fleet, c) for c in fleet.names}
    us_east = lb_address(fleet, "us-east")
    try:
        async with (
            Hub(settings, collecting) as leader,
            Hub(settings, following, collect=False) as replica,
        ):

            async def replica_web_is(expected: set[str]) -> bool:
                return await addresses(replica.dns_port, WEB) == expected

            await eventually(lambda: replica_web_is(everyone))
            await fleet.outage("us-east")
            await eventually(lambda: addresses_equal(leader.dns_port, everyone - {us_east}))
            # The replica does no collecting: it follows the catalog's change notifications.
            lag = await eventually(lambda: replica_web_is(everyone - {us_east}), limit=1.0)
            assert lag < 1.0
        # Every hub is gone; a new one answers from Redis before any sweep.
        async with Hub(settings, following, collect=False) as restarted:
            await eventually(lambda: addresses_equal(restarted.dns_port, everyone - {us_east}), 2.0)
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{restarted.http_port}/readyz"
                async with http.get(url) as response:
                    assert response.status == 200
    finally:
        await collecting.close()
        await following.close()


async def addresses_equal(port: int, expected: set[str]) -> bool:
    return await addresses(port, WEB) == expected


async def test_demo_control_api_drives_the_outage_over_http(
    fleet: SimFleet, settings: Settings, redis_server: RedisServer
) -> None:
    store = redis_store(redis_server)
    try:
        async with Hub(settings, store, extra_routes=sim_routes(fleet), open_mutations=True) as hub:
            base = f"http://127.0.0.1:{hub.http_port}/api/v1"
            await eventually(lambda: _srv_count(hub.dns_port, 3))
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/sim/clusters/ap-south/outage") as response:
                    assert response.status == 200
                ap_south = lb_address(fleet, "ap-south")

                async def explained() -> bool:
                    async with http.get(f"{base}/services/default/web") as response:
                        body = await response.json()
                    choice = next(c for c in body["clusters"] if c["cluster"] == "ap-south")
                    return not choice["in_answer"] and ap_south not in body["answer"]

                await eventually(explained)
                async with http.get(f"{base}/services/default/web") as response:
                    body = await response.json()
                choice = next(c for c in body["clusters"] if c["cluster"] == "ap-south")
                assert "cluster is down" in choice["reason"]
                assert "API unreachable: cannot connect: connection refused" in choice["reason"]
                async with http.post(f"{base}/sim/clusters/nowhere/outage") as response:
                    assert response.status == 404
    finally:
        await store.close()


async def test_nxdomain_nodata_and_refused(
    fleet: SimFleet, settings: Settings, redis_server: RedisServer
) -> None:
    store = redis_store(redis_server)
    try:
        async with Hub(settings, store) as hub:
            port = hub.dns_port
            await eventually(lambda: _srv_count(port, 3))
            missing = await ask(port, "nope.default.global.example.com.")
            assert missing.rcode() == dns.rcode.NXDOMAIN
            assert missing.authority[0].rdtype == dns.rdatatype.SOA
            nodata = await ask(port, WEB, "TXT")
            assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
            assert nodata.authority[0].rdtype == dns.rdatatype.SOA
            outside = await ask(port, "example.org.")
            assert outside.rcode() == dns.rcode.REFUSED
    finally:
        await store.close()


async def test_dns_keeps_answering_through_a_redis_restart(
    fleet: SimFleet, settings: Settings
) -> None:
    everyone = {lb_address(fleet, c) for c in fleet.names}
    us_east = lb_address(fleet, "us-east")
    with RedisServer() as redis:
        store = redis_store(redis)
        try:
            async with Hub(settings, store) as hub:
                port = hub.dns_port
                await eventually(lambda: addresses_equal(port, everyone))
                redis.stop()
                for _ in range(5):  # the last good snapshot keeps being served
                    assert await addresses(port, WEB) == everyone
                    await asyncio.sleep(0.2)
                redis.start()  # empty: this server keeps nothing on disk
                await fleet.outage("us-east")
                # Collectors write again and the catalog resynchronises.
                await eventually(lambda: addresses_equal(port, everyone - {us_east}))
                snapshot = await store.snapshot()
                assert set(snapshot.reports) == set(fleet.names)
        finally:
            await store.close()
