"""Redis killed (SIGKILL) and restarted under a running `mcobs serve`.

What a user notices: DNS keeps answering the last good snapshot while Redis is gone, the
catalog catches up with what happened meanwhile once Redis is back, and the webhook
consumer receives every decision exactly once after de-duplication by `webhook-id`.

"No event lost" assumes Redis keeps what it acknowledged, as a production deployment does
(README: surviving a restart of Redis needs AOF or a replica): the first test runs
redis-server with `appendonly yes` + `appendfsync always` in its own directory. The
second test runs it without persistence, where Redis comes back empty: then the catalog
must be rebuilt by the collectors on their own, while DNS never stops answering.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from mcobs.sim.fleet import SimFleet
from tests.faults.harness import (
    PersistentRedis,
    ServeProcess,
    WebhookConsumer,
    all_events,
    answers,
    ask,
    eventually,
    fleet_entries,
    free_udp_port,
    get_json,
    serve_config,
    stopping,
    web_address,
)
from tests.redis_server import free_port

pytestmark = [pytest.mark.timeout(240)]


async def _sample_dns(port: int, seconds: float) -> list[frozenset[str] | str]:
    """Answers to `web` every 100 ms for `seconds` (an rcode other than NOERROR as text)."""
    seen: list[frozenset[str] | str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = await ask(port, within=0.5)
        seen.append(answer.records if answer.rcode == "NOERROR" else answer.rcode)
        await asyncio.sleep(0.1)
    return seen


async def test_redis_restart_keeps_dns_resyncs_catalog_and_loses_no_webhook_event(
    tmp_path: Path,
) -> None:
    redis = PersistentRedis(tmp_path / "redis", persist=True)
    redis.start()
    try:
        async with SimFleet.default(clusters=3) as fleet, WebhookConsumer() as consumer:
            kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
            serve = ServeProcess(
                serve_config(
                    fleet_entries(fleet, kubeconfig),
                    redis_url=redis.url,
                    prefix="faults-redis",
                    dns_port=free_udp_port(),
                    http_port=free_port(),
                    webhook=(consumer.url, consumer.secret),
                ),
                tmp_path,
            )
            await serve.start()
            async with stopping(serve):
                await _redis_restart_scenario(fleet, consumer, redis, serve)
    finally:
        redis.stop()


async def _redis_restart_scenario(
    fleet: SimFleet, consumer: WebhookConsumer, redis: PersistentRedis, serve: ServeProcess
) -> None:
    port = serve.dns_port
    eu, us, ap = (web_address(fleet, c) for c in ("eu-west", "us-east", "ap-south"))
    everyone = frozenset({eu, us, ap})

    async def dns_is(expected: frozenset[str]) -> bool:
        return await answers(port) == expected

    def last_change(cluster: str) -> tuple[str, str] | None:
        changes = consumer.state_changes(cluster)
        return changes[-1] if changes else None

    async def delivered(cluster: str, to: str) -> bool:
        change = last_change(cluster)
        return change is not None and change[1] == to

    await eventually(lambda: dns_is(everyone), 40, "every cluster answered")

    # Before: an outage and its recovery reach DNS and the consumer.
    await fleet.outage("eu-west")
    await eventually(lambda: dns_is(everyone - {eu}), 15, "eu-west left DNS")
    await eventually(lambda: delivered("eu-west", "down"), 15, "eu-west down delivered")
    await fleet.recover("eu-west")
    await eventually(lambda: dns_is(everyone), 15, "eu-west back in DNS")
    await eventually(lambda: delivered("eu-west", "healthy"), 15, "eu-west up delivered")

    # The consumer goes away; ap-south's outage is decided and its events wait in the outbox.
    consumer.accepting = False
    await fleet.outage("ap-south")
    await eventually(lambda: dns_is(everyone - {ap}), 15, "ap-south left DNS")

    async def something_pending() -> bool:
        return bool(set(consumer.attempts) - set(consumer.delivered))

    await eventually(something_pending, 15, "a refused delivery is pending")
    pending_at_kill = set(consumer.attempts) - set(consumer.delivered)

    # Redis dies with those deliveries in it; us-east goes down while it is away.
    redis.kill()
    await fleet.outage("us-east")
    during = await _sample_dns(port, 5.0)
    assert set(during) == {everyone - {ap}}, f"DNS while Redis was down: {set(during)}"
    assert (await get_json(serve.http_port, "/readyz", within=2))["status"] == "ready"
    api = await get_json(serve.http_port, "/api/v1/services", within=2)
    assert api["services"], "the API keeps serving the last good snapshot"

    # Redis is back with what it acknowledged; the consumer answers again.
    redis.start()
    consumer.accepting = True
    resync = await eventually(lambda: dns_is(frozenset({eu})), 20, "catalog resynchronised")
    await eventually(lambda: delivered("us-east", "down"), 30, "us-east down delivered")
    await eventually(lambda: delivered("ap-south", "down"), 60, "ap-south down delivered")
    assert pending_at_kill <= set(consumer.delivered), "a delivery pending at the kill was lost"

    # After: recoveries are decided and delivered as usual.
    await fleet.recover("us-east")
    await fleet.recover("ap-south")
    await eventually(lambda: dns_is(everyone), 20, "every cluster back in DNS")
    await eventually(lambda: delivered("us-east", "healthy"), 20, "us-east up delivered")
    await eventually(lambda: delivered("ap-south", "healthy"), 20, "ap-south up delivered")

    # Every event of the decision log reached the consumer; de-duplicated, exactly once.
    logged = await all_events(serve.http_port)
    ids = [e["id"] for e in logged]
    assert len(ids) == len(set(ids))

    async def all_delivered() -> bool:
        return set(ids) <= set(consumer.delivered)

    await eventually(all_delivered, 60, "every logged event delivered")
    await asyncio.sleep(1.0)  # anything sent late would show up now
    assert set(consumer.delivered) == set(ids), "delivered events that are not in the log"
    assert consumer.bad_signatures == 0
    for cluster in ("eu-west", "us-east", "ap-south"):
        # one decision per transition: no decision repeated under a new id, none missing
        assert consumer.state_changes(cluster) == [("healthy", "down"), ("down", "healthy")], (
            cluster,
            consumer.state_changes(cluster),
        )
    repeats = {i: n for i, n in consumer.delivered.items() if n > 1}
    print(
        f"resync {resync:.2f}s; {len(ids)} events; repeated deliveries (de-duplicated): {repeats}"
    )


async def test_redis_restarted_empty_catalog_is_rebuilt_while_dns_keeps_answering(
    tmp_path: Path,
) -> None:
    redis = PersistentRedis(tmp_path / "redis", persist=False)
    redis.start()
    try:
        async with SimFleet.default(clusters=3) as fleet:
            kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
            serve = ServeProcess(
                serve_config(
                    fleet_entries(fleet, kubeconfig),
                    redis_url=redis.url,
                    prefix="faults-empty",
                    dns_port=free_udp_port(),
                    http_port=free_port(),
                ),
                tmp_path,
            )
            await serve.start()
            async with stopping(serve):
                port = serve.dns_port
                everyone = frozenset(web_address(fleet, c) for c in fleet.names)
                us = web_address(fleet, "us-east")

                async def dns_is(expected: frozenset[str]) -> bool:
                    return await answers(port) == expected

                await eventually(lambda: dns_is(everyone), 40, "every cluster answered")
                redis.kill()
                during = await _sample_dns(port, 3.0)
                redis.start()  # empty: no persistence
                after = await _sample_dns(port, 4.0)
                assert set(during) | set(after) == {everyone}, set(during) | set(after)

                async def catalog_rebuilt() -> bool:
                    client = Redis.from_url(redis.url)
                    try:
                        stored = await client.hkeys("faults-empty:{catalog}:reports")
                    finally:
                        await client.aclose()
                    return {k.decode() if isinstance(k, bytes) else k for k in stored} == set(
                        fleet.names
                    )

                await eventually(catalog_rebuilt, 15, "every cluster's report is in Redis again")
                # Rebuilt in Redis too, not only carried over in memory: a change still shows.
                await fleet.outage("us-east")
                await eventually(lambda: dns_is(everyone - {us}), 15, "us-east left DNS")
    finally:
        redis.stop()
