"""Decisions from plans: what changed, with inputs and reasons, and nothing else."""

from __future__ import annotations

import random
from dataclasses import replace
from types import MappingProxyType

from mcobs.answer import ZonePolicy, build_zone
from mcobs.decide.diff import Decision, decide
from mcobs.decide.facts import (
    EMPTY_FACTS,
    ClusterFact,
    DrainFact,
    Facts,
    ServiceFact,
    changed_entries,
    from_entries,
    to_entries,
)
from mcobs.model import (
    CatalogSnapshot,
    ClusterReport,
    Drain,
    Health,
    HealthState,
    Scope,
    ServiceKey,
)
from mcobs.notify.event import MAX_EVENT_BYTES, Event, encode_event
from mcobs.zone import Nameserver
from tests.core.factories import report, service, snapshot

POLICY = ZonePolicy(
    origin="global.example.com.", nameservers=(Nameserver("ns1.global.example.com."),)
)
NOW = 1005.0
DOWN = Health(0.0, HealthState.DOWN, ("API unreachable (2 failed probes): connection refused",))
DEGRADED = Health(0.5, HealthState.DEGRADED, ("targets_up 0.5 < 0.9",))
ADDRESSES = {"eu-west": "192.0.2.1", "us-east": "198.51.100.1", "ap-south": "203.0.113.1"}


def cluster(
    name: str,
    *,
    health: Health | None = None,
    ready: int = 3,
    annotations: dict[str, str] | None = None,
) -> ClusterReport:
    kwargs = {} if health is None else {"health": health}
    svc = service(name, (ADDRESSES[name],), ready=ready, annotations=annotations)
    return report(name, (svc,), observed_at=NOW - 5, **kwargs)  # type: ignore[arg-type]


def fleet(*reports: ClusterReport, drains: tuple[Drain, ...] = ()) -> CatalogSnapshot:
    snap = snapshot(*reports)
    return replace(snap, drains=MappingProxyType({str(d.scope): d for d in drains}))


class Decisions:
    """Feeds snapshots through `decide`, keeping the facts, like the decider does."""

    def __init__(self, facts: Facts = EMPTY_FACTS) -> None:
        self.facts = facts
        self.rng = random.Random(1)

    def __call__(self, snap: CatalogSnapshot, now: float = NOW) -> list[Event]:
        decision = self.decision(snap, now)
        self.facts = decision.facts
        return list(decision.events)

    def decision(self, snap: CatalogSnapshot, now: float = NOW) -> Decision:
        plan = build_zone(snap, POLICY, now)
        return decide(self.facts, snap, plan, now=now, stale_after=30.0, rng=self.rng)


def kinds(events: list[Event]) -> list[tuple[str, object]]:
    return [(e.type, e.data.get("cluster") or e.data.get("service")) for e in events]


def three() -> CatalogSnapshot:
    return fleet(cluster("eu-west"), cluster("us-east"), cluster("ap-south"))


def test_nothing_changed_means_no_events_and_no_writes() -> None:
    decisions = Decisions()
    decisions(three())
    before = decisions.facts
    assert decisions(three(), NOW + 1) == []
    assert changed_entries(before, decisions.facts) == {}


def test_a_first_plan_of_a_healthy_fleet_is_silent() -> None:
    assert Decisions()(three()) == []


def test_a_first_plan_reports_only_what_is_wrong() -> None:
    events = Decisions()(fleet(cluster("eu-west"), cluster("us-east", health=DOWN)))
    assert kinds(events) == [
        ("cluster.state_changed", "us-east"),
        ("service.failover", "web"),
    ]
    state = events[0].data
    assert (state["from"], state["to"], state["since"]) == ("unknown", "down", None)


def test_a_cluster_going_down_and_back_is_two_state_changes_with_inputs() -> None:
    decisions = Decisions()
    decisions(three())
    events = decisions(
        fleet(cluster("eu-west"), cluster("us-east", health=DOWN), cluster("ap-south")), NOW + 10
    )
    down = next(e for e in events if e.type == "cluster.state_changed")
    assert down.data["cluster"] == "us-east"
    assert (down.data["from"], down.data["to"]) == ("healthy", "down")
    assert down.data["reasons"] == DOWN.reasons
    assert down.data["score"] == 0.0
    assert down.data["probe"]["reachable"] is True  # type: ignore[index]
    assert down.data["since"] == "1970-01-01T00:16:45.000000Z"  # healthy since the first plan
    assert down.timestamp == "1970-01-01T00:16:55.000000Z"

    events = decisions(three(), NOW + 20)
    up = next(e for e in events if e.type == "cluster.state_changed")
    assert (up.data["from"], up.data["to"]) == ("down", "healthy")
    assert up.data["since"] == "1970-01-01T00:16:55.000000Z"  # down since then


def test_a_stale_cluster_is_down() -> None:
    decisions = Decisions()
    decisions(three())
    events = decisions(three(), NOW + 60)  # every report is now older than stale_after
    changed = [e for e in events if e.type == "cluster.state_changed"]
    assert {e.data["cluster"] for e in changed} == set(ADDRESSES)
    assert all("stale" in e.data["reasons"][0] for e in changed)  # type: ignore[index]


def test_failover_names_where_answers_went_and_why() -> None:
    decisions = Decisions()
    decisions(three())
    events = decisions(fleet(cluster("eu-west"), cluster("us-east", ready=0), cluster("ap-south")))
    assert kinds(events) == [("service.failover", "web")]
    data = events[0].data
    assert data["active"] is True
    assert data["from"] == ("ap-south", "eu-west", "us-east")
    assert set(data["to"]) == {"ap-south", "eu-west"}  # type: ignore[arg-type]
    assert data["reasons"] == ("us-east: no ready endpoints (0 of 3)",)
    assert data["failed"] == ("us-east",)
    assert data["inputs"]["us-east"]["ready_endpoints"] == 0  # type: ignore[index]
    assert data["since"] is None

    events = decisions(three(), NOW + 20)
    back = events[0].data
    assert kinds(events) == [("service.failover", "web")]
    assert back["active"] is False
    assert set(back["to"]) == set(ADDRESSES)  # type: ignore[arg-type]
    assert back["since"] == "1970-01-01T00:16:45.000000Z"


def test_a_second_cluster_failing_updates_the_failover() -> None:
    decisions = Decisions()
    decisions(three())
    decisions(fleet(cluster("eu-west"), cluster("us-east", ready=0), cluster("ap-south")))
    events = decisions(
        fleet(cluster("eu-west"), cluster("us-east", ready=0), cluster("ap-south", ready=0)),
        NOW + 5,
    )
    assert [e.data["active"] for e in events] == [True]
    assert events[0].data["to"] == ("eu-west",)
    assert events[0].data["since"] == "1970-01-01T00:16:45.000000Z"


def test_clusters_joining_or_leaving_a_service_are_not_a_failover() -> None:
    decisions = Decisions()
    decisions(fleet(cluster("eu-west")))
    assert decisions(fleet(cluster("eu-west"), cluster("us-east"))) == []
    assert decisions(fleet(cluster("eu-west"), report("us-east", observed_at=NOW))) == []


def test_last_resort_is_entered_and_left() -> None:
    decisions = Decisions()
    decisions(fleet(cluster("eu-west"), cluster("us-east")))
    events = decisions(
        fleet(cluster("eu-west", health=DOWN), cluster("us-east", health=DOWN)), NOW + 10
    )
    assert kinds(events) == [
        ("cluster.state_changed", "eu-west"),
        ("cluster.state_changed", "us-east"),
        ("service.last_resort", "web"),
    ]
    entered = events[-1].data
    assert entered["active"] is True
    assert entered["clusters"] == ("eu-west", "us-east")
    assert entered["policy"] == "serve-all"
    assert any("cluster is down" in r for r in entered["reasons"])  # type: ignore[union-attr]

    events = decisions(fleet(cluster("eu-west"), cluster("us-east")), NOW + 20)
    left = [e for e in events if e.type.startswith("service.")]
    assert kinds(left) == [("service.last_resort", "web")]  # no failover: it never failed over
    assert left[0].data["active"] is False
    assert left[0].data["since"] == "1970-01-01T00:16:55.000000Z"


def test_leaving_last_resort_onto_fewer_clusters_is_a_failover() -> None:
    decisions = Decisions()
    decisions(fleet(cluster("eu-west"), cluster("us-east")))
    decisions(fleet(cluster("eu-west", ready=0), cluster("us-east", ready=0)))
    events = decisions(fleet(cluster("eu-west"), cluster("us-east", ready=0)))
    assert [(e.type, e.data["active"]) for e in events] == [
        ("service.last_resort", False),
        ("service.failover", True),
    ]
    assert events[1].data["to"] == ("eu-west",)


def test_a_failed_standby_is_not_a_failover_but_a_failed_primary_is() -> None:
    order = {"mcobs.io/strategy": "failover", "mcobs.io/failover-order": "eu-west,us-east"}
    decisions = Decisions()

    def two(eu: int, us: int) -> CatalogSnapshot:
        return fleet(
            cluster("eu-west", ready=eu, annotations=order),
            cluster("us-east", ready=us, annotations=order),
        )

    decisions(two(3, 3))
    assert decisions(two(3, 0)) == []  # the standby failed: answers did not move
    assert decisions(two(3, 3)) == []
    events = decisions(two(0, 3))
    assert kinds(events) == [("service.failover", "web")]
    assert (events[0].data["from"], events[0].data["to"]) == (("eu-west",), ("us-east",))
    assert events[0].data["strategy"] == "failover"
    assert decisions(two(3, 3))[0].data["active"] is False


def test_a_drain_is_an_override_event_not_a_failover() -> None:
    decisions = Decisions()
    decisions(three())
    drain = Drain(Scope("us-east"), "kernel upgrade", created_at=NOW, by="alice")
    events = decisions(fleet(*three().reports.values(), drains=(drain,)))
    assert kinds(events) == [("override.drain", "us-east")]
    data = events[0].data
    assert (data["active"], data["reason"], data["by"], data["scope"]) == (
        True,
        "kernel upgrade",
        "alice",
        "us-east",
    )
    events = decisions(three(), NOW + 20)
    assert kinds(events) == [("override.drain", "us-east")]
    assert events[0].data["active"] is False
    assert events[0].data["ended"] == "removed"


def test_a_service_drain_names_the_service() -> None:
    decisions = Decisions()
    decisions(three())
    drain = Drain(Scope("eu-west", service("eu-west").key), "bad deploy", created_at=NOW)
    events = decisions(fleet(*three().reports.values(), drains=(drain,)))
    assert kinds(events) == [("override.drain", "eu-west")]
    assert (events[0].data["namespace"], events[0].data["service"]) == ("default", "web")


def test_a_cluster_that_leaves_the_catalog_becomes_unknown() -> None:
    decisions = Decisions()
    decisions(fleet(cluster("eu-west"), cluster("us-east", health=DEGRADED)))
    events = decisions(fleet(cluster("eu-west")))
    assert [(e.data["from"], e.data["to"]) for e in events] == [("degraded", "unknown")]
    assert "us-east" not in decisions.facts.clusters


def test_a_service_that_disappears_while_failed_over_is_resolved() -> None:
    decisions = Decisions()
    decisions(fleet(cluster("eu-west"), cluster("us-east")))
    decisions(fleet(cluster("eu-west"), cluster("us-east", ready=0)))
    events = decisions(
        fleet(report("eu-west", observed_at=NOW), report("us-east", observed_at=NOW))
    )
    assert [(e.type, e.data["active"]) for e in events] == [("service.failover", False)]


def test_facts_survive_their_encoding_so_a_new_leader_carries_on() -> None:
    decisions = Decisions()
    decisions(fleet(cluster("eu-west"), cluster("us-east")))
    decisions(fleet(cluster("eu-west"), cluster("us-east", ready=0)))
    decisions(fleet(cluster("eu-west", ready=0), cluster("us-east", ready=0)))
    restored, bad = from_entries(to_entries(decisions.facts))
    assert bad == []
    assert restored == decisions.facts
    successor = Decisions(restored)
    assert successor(fleet(cluster("eu-west", ready=0), cluster("us-east", ready=0))) == []


def test_undecodable_facts_are_dropped() -> None:
    entries = to_entries(Decisions().decision(three()).facts)
    entries["cluster:eu-west"] = "{"
    entries["service:nonsense"] = '{"answer": []}'
    entries["other:x"] = "{}"
    facts, bad = from_entries(entries)
    assert bad == ["cluster:eu-west", "other:x", "service:nonsense"]
    assert set(facts.clusters) == {"us-east", "ap-south"}


def test_an_event_about_a_huge_fleet_stays_small() -> None:
    names = [f"c{i:03d}" for i in range(300)]
    reports = [
        report(n, (service(n, (f"10.0.{i // 250}.{i % 250 + 1}",)),), observed_at=NOW - 5)
        for i, n in enumerate(names)
    ]
    decisions = Decisions()
    decisions(fleet(*reports))
    broken = [replace(r, health=DOWN) if i % 2 else r for i, r in enumerate(reports)]
    events = decisions(fleet(*broken))
    failover = next(e for e in events if e.type == "service.failover")
    assert len(failover.data["reasons"]) == 50  # type: ignore[arg-type]
    assert failover.data["reasons"][-1] == "... and 101 more"  # type: ignore[index]
    assert all(len(encode_event(e)) < MAX_EVENT_BYTES for e in events)


def test_changed_entries_write_exactly_the_facts_whose_encoding_changed() -> None:
    rng = random.Random(5)
    for _ in range(200):
        before, after = random_facts(rng), random_facts(rng)
        old, new = to_entries(before), to_entries(after)
        expected = {k: v for k, v in new.items() if old.get(k) != v}
        expected.update({k: None for k in old.keys() - new.keys()})
        assert changed_entries(before, after) == expected


def random_facts(rng: random.Random) -> Facts:
    """Facts drawn from a few names and values, so two draws often share some."""
    names = [f"c{n}" for n in range(4)]
    since = (1.0, 1.0000001, 2.0)  # the first two encode alike (microseconds)
    return Facts(
        clusters=MappingProxyType(
            {
                n: ClusterFact(rng.choice(("up", "down")), rng.choice(since))
                for n in names
                if rng.random() < 0.7
            }
        ),
        services=MappingProxyType(
            {
                ServiceKey("shop", s): ServiceFact(
                    tuple(sorted(rng.sample(names, rng.randrange(3)))),
                    rng.random() < 0.5,
                    False,
                    rng.choice((None, *since)),
                )
                for s in ("web", "api")
                if rng.random() < 0.7
            }
        ),
        drains=MappingProxyType(
            {n: DrainFact("test", rng.choice(since)) for n in names if rng.random() < 0.3}
        ),
    )
