from mcobs.answer import ZonePolicy
from mcobs.hub import BUILD_SLICE_SECONDS, Planner
from mcobs.model import ServiceKey
from mcobs.zone import Nameserver

from .factories import report, service, snapshot

POLICY = ZonePolicy(
    origin="global.example.com.",
    nameservers=(Nameserver("ns1.global.example.com."),),
    stale_after=30.0,
)
WEB = "web.default.global.example.com."


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def two_clusters(version: int, observed_at: float = 1000.0):  # type: ignore[no-untyped-def]
    return snapshot(
        report("eu-west", (service("eu-west", ("192.0.2.1",)),), observed_at=observed_at),
        report("us-east", (service("us-east", ("198.51.100.1",)),), observed_at=observed_at),
        version=version,
    )


def test_an_unchanged_view_keeps_its_object_and_serial() -> None:
    planner = Planner(POLICY, Clock(1005.0))
    planner.on_snapshot(two_clusters(3))
    view = planner.plan.view
    planner.on_snapshot(two_clusters(4))
    assert planner.plan.view is view


def test_serial_grows_with_every_change_even_when_the_catalog_version_restarts() -> None:
    clock = Clock(1005.0)
    planner = Planner(POLICY, clock)
    planner.on_snapshot(two_clusters(50))
    first = planner.plan.view.soa.serial
    changed = snapshot(report("eu-west", (service("eu-west", ("192.0.2.9",)),)), version=1)
    planner.on_snapshot(changed)
    assert planner.plan.view.soa.serial > first


def test_a_cluster_missing_from_the_catalog_is_served_until_its_report_is_stale() -> None:
    clock = Clock(1005.0)
    planner = Planner(POLICY, clock)
    planner.on_snapshot(two_clusters(9))
    # Redis restarted empty; only eu-west has written again.
    planner.on_snapshot(
        snapshot(
            report("eu-west", (service("eu-west", ("192.0.2.1",)),), observed_at=1025.0),
            version=1,
        )
    )
    records = planner.plan.view.lookup(WEB)
    assert records is not None and set(records.a) == {"192.0.2.1", "198.51.100.1"}
    clock.now = 1031.0  # us-east's last report is now stale
    planner.replan()
    records = planner.plan.view.lookup(WEB)
    assert records is not None and records.a == ("192.0.2.1",)
    planner.on_snapshot(
        snapshot(
            report("eu-west", (service("eu-west", ("192.0.2.1",)),), observed_at=1031.0), version=2
        )
    )
    assert set(planner.snapshot.reports) == {"eu-west"}


def test_carrying_a_cluster_over_keeps_the_drains_and_alerts() -> None:
    from dataclasses import replace
    from types import MappingProxyType

    from mcobs.model import Drain, Scope

    planner = Planner(POLICY, Clock(1005.0))
    planner.on_snapshot(two_clusters(9))
    drain = Drain(Scope("eu-west"), "upgrade", created_at=1000)
    partial = snapshot(report("eu-west", (service("eu-west", ("192.0.2.1",)),)), version=1)
    planner.on_snapshot(replace(partial, drains=MappingProxyType({"eu-west": drain})))
    assert "eu-west" in planner.snapshot.drains
    records = planner.plan.view.lookup(WEB)
    assert records is not None and records.a == ("198.51.100.1",)


def test_before_the_first_snapshot_every_name_fails_rather_than_not_existing() -> None:
    from mcobs.model import EMPTY_SNAPSHOT

    planner = Planner(POLICY, Clock(1005.0))
    assert (
        WEB in planner.plan.view.servfail
        and "anything." + POLICY.origin in planner.plan.view.servfail
    )
    planner.replan()  # the staleness timer must not end it early
    assert WEB in planner.plan.view.servfail
    planner.on_snapshot(EMPTY_SNAPSHOT)  # an empty catalog is an answer: NXDOMAIN from here
    assert WEB not in planner.plan.view.servfail and planner.plan.view.lookup(WEB) is None


async def test_slow_builds_are_spaced_so_a_stream_of_changes_shares_them() -> None:
    import asyncio
    import time
    from typing import Any

    planner = Planner(POLICY, Clock(1005.0))
    build_steps = planner._builder.build_steps

    def slow_build(*args: Any) -> Any:
        time.sleep(0.2)  # a thousand clusters' worth of planning
        return (yield from build_steps(*args))

    planner._builder.build_steps = slow_build  # type: ignore[method-assign]
    runner = asyncio.create_task(planner.run())
    await asyncio.sleep(0)
    try:
        planner.on_snapshot(two_clusters(1))
        for _ in range(200):
            if planner.builds:
                break
            await asyncio.sleep(0.005)
        for n in range(2, 12):  # ten changes within the cool-down of that slow build
            planner.on_snapshot(two_clusters(n, observed_at=1000.0 + n))
            await asyncio.sleep(0.003)
        assert planner.builds == 1  # deferred, not dropped ...
        deadline = time.monotonic() + 3
        while planner.builds < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        assert planner.builds == 2  # ... and they all shared one build
        assert planner.plan.view.lookup(WEB) is not None
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_long_build_lets_the_event_loop_run_between_services() -> None:
    """DNS replies, probes and Redis replies must not wait for a whole build."""
    import asyncio

    services = [ServiceKey("shop", f"s{n}") for n in range(40)]
    many = snapshot(
        *(
            report(
                f"c{c:03d}",
                tuple(
                    service(f"c{c:03d}", (f"10.0.{c}.{n}",), key=k) for n, k in enumerate(services)
                ),
            )
            for c in range(150)
        ),
        version=1,
    )
    planner = Planner(POLICY, Clock(1005.0))
    turns_during_build = 0

    async def other_work() -> None:
        nonlocal turns_during_build
        while True:
            turns_during_build += planner._building
            await asyncio.sleep(0)

    runner = asyncio.create_task(planner.run())
    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    try:
        planner.on_snapshot(many)
        for _ in range(1000):
            if planner.builds:
                break
            await asyncio.sleep(0.01)
        assert planner.build_seconds > 5 * BUILD_SLICE_SECONDS  # a build worth slicing
        assert turns_during_build >= 3
        assert planner.plan.view.lookup("s7.shop.global.example.com.") is not None
    finally:
        for task in (runner, other):
            task.cancel()
        await asyncio.gather(runner, other, return_exceptions=True)
