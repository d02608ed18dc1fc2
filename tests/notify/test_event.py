from __future__ import annotations

import json
import random

import pytest

from mcobs.notify.event import (
    EVENT_TYPES,
    EventError,
    cluster_state_changed,
    decode_event,
    encode_event,
    new_event,
    override_drain,
    service_failover,
    service_last_resort,
)
from tests.notify.conftest import Clock

NOW = 1_714_564_800.25  # 2024-05-01T12:00:00.25Z


def test_an_event_survives_its_json_exactly() -> None:
    event = cluster_state_changed(
        "eu-west", "healthy", "down", ["API unreachable"], clock=Clock(NOW), rng=random.Random(1)
    )
    wire = json.loads(encode_event(event))
    assert wire == {
        "id": event.id,
        "type": "cluster.state_changed",
        "timestamp": "2024-05-01T12:00:00.250000Z",
        "data": {
            "cluster": "eu-west",
            "from": "healthy",
            "to": "down",
            "reasons": ["API unreachable"],
        },
    }
    assert decode_event(encode_event(event)) == event
    assert encode_event(decode_event(encode_event(event))) == encode_event(event)


def test_ids_are_distinct_and_sort_by_time() -> None:
    rng, clock = random.Random(2), Clock(NOW)
    ids = []
    for _ in range(100):
        ids.append(override_drain("eu-west", active=True, clock=clock, rng=rng).id)
        clock.advance(0.001)
    assert len(set(ids)) == 100
    assert ids == sorted(ids)
    assert all(i.startswith("evt_") and len(i) == 30 for i in ids)


def test_event_data_is_frozen() -> None:
    event = service_failover(
        "default", "web", active=True, from_clusters=["eu-west"], to_clusters=["us-east"],
        clock=Clock(NOW), rng=random.Random(3),
    )  # fmt: skip
    with pytest.raises(TypeError):
        event.data["service"] = "other"  # type: ignore[index]
    assert event.data["to"] == ("us-east",)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(EventError) as caught:
        decode_event(
            json.dumps(
                {
                    "id": "nope",
                    "type": "cluster.state_changed",
                    "timestamp": "yesterday",
                    "data": {"cluster": 3, "from": "healthy", "reasons": "x", "n": float("inf")},
                    "extra": 1,
                }
            )
        )
    problems = caught.value.problems
    assert "(top level): unknown keys extra" in problems
    assert any(p.startswith("id:") for p in problems)
    assert any(p.startswith("timestamp:") for p in problems)
    assert "data.n: must be a finite number" in problems
    assert "data.cluster: must be a string" in problems
    assert "data.to: missing" in problems
    assert "data.reasons: must be an array of strings" in problems


def test_new_event_refuses_unknown_types_and_non_json_data() -> None:
    with pytest.raises(EventError) as caught:
        new_event("cluster.exploded", {"when": object()}, clock=Clock(NOW), rng=random.Random())
    assert caught.value.problems[0].startswith("type: unknown event type 'cluster.exploded'")
    assert "data.when: object is not JSON" in caught.value.problems


def test_decoding_accepts_well_formed_types_it_does_not_know() -> None:
    # A newer replica may queue a type this one does not know; it is still delivered.
    event = decode_event(
        '{"id":"evt_01HX0000000000000000000000","type":"cluster.renamed",'
        '"timestamp":"2024-05-01T12:00:00+00:00","data":{"a":[1,{"b":null}]}}'
    )
    assert event.type == "cluster.renamed"
    assert event.timestamp == "2024-05-01T12:00:00.000000Z"


def test_not_json_and_oversized_payloads_are_refused() -> None:
    with pytest.raises(EventError, match="not JSON"):
        decode_event(b"{")
    with pytest.raises(EventError, match="larger than"):
        decode_event(b" " * 70_000)


def test_every_registered_type_has_a_constructor_that_validates() -> None:
    clock, rng = Clock(NOW), random.Random(4)
    made = {
        cluster_state_changed("a", "down", "healthy", clock=clock, rng=rng).type,
        service_failover(
            "ns", "s", active=False, from_clusters=[], to_clusters=["a"], clock=clock, rng=rng
        ).type,
        service_last_resort("ns", "s", active=True, clusters=["a", "b"], clock=clock, rng=rng).type,
        override_drain("a", active=True, reason="maintenance", clock=clock, rng=rng).type,
    }
    assert made == set(EVENT_TYPES)
