from __future__ import annotations

import json
import random
from typing import Any

from mcobs.notify.event import (
    cluster_state_changed,
    encode_event,
    new_event,
    override_drain,
    service_failover,
    service_last_resort,
)
from mcobs.notify.payloads import PayloadFormat, alertmanager_payload, render
from tests.notify.conftest import Clock

NOW = 1_714_564_800.0
URL = "https://mcobs.example.com"


def _am(body: bytes | None) -> dict[str, Any]:
    assert body is not None
    payload: dict[str, Any] = json.loads(body)
    return payload


def test_standard_format_is_the_event_json() -> None:
    event = override_drain("eu-west", active=True, clock=Clock(NOW), rng=random.Random(1))
    assert render(PayloadFormat.STANDARD, event, receiver="x") == encode_event(event)


def test_a_cluster_going_down_fires_and_coming_back_resolves_the_same_alert() -> None:
    clock, rng = Clock(NOW), random.Random(2)
    down = cluster_state_changed(
        "eu-west", "healthy", "down", ["API unreachable"], clock=clock, rng=rng
    )
    clock.advance(600)
    back = cluster_state_changed("eu-west", "down", "healthy", clock=clock, rng=rng)
    fired = _am(render(PayloadFormat.ALERTMANAGER, down, receiver="pager", external_url=URL))
    resolved = _am(render(PayloadFormat.ALERTMANAGER, back, receiver="pager", external_url=URL))

    assert fired["version"] == "4"
    assert fired["status"] == "firing"
    assert fired["receiver"] == "pager"
    assert fired["externalURL"] == URL
    assert fired["groupLabels"] == {"cluster": "eu-west"}
    assert fired["groupKey"] == '{}:{cluster="eu-west"}'
    assert fired["commonLabels"] == {
        "alertname": "McobsClusterDown",
        "cluster": "eu-west",
        "severity": "critical",
    }
    (alert,) = fired["alerts"]
    assert alert["status"] == "firing"
    assert alert["annotations"]["summary"] == "Cluster eu-west is down"
    assert alert["annotations"]["description"] == "API unreachable"
    assert alert["annotations"]["mcobs_event_id"] == down.id
    assert alert["startsAt"] == "2024-05-01T12:00:00.000000Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == URL + "/api/v1/clusters"

    assert resolved["status"] == "resolved"
    (ended,) = resolved["alerts"]
    assert ended["labels"] == alert["labels"]
    assert ended["fingerprint"] == alert["fingerprint"]
    assert ended["endsAt"] == "2024-05-01T12:10:00.000000Z"
    assert ended["annotations"]["summary"] == "Cluster eu-west is no longer down (now healthy)"


def test_resolved_alerts_start_when_the_event_says_the_state_began() -> None:
    clock = Clock(NOW)
    back = new_event(
        "cluster.state_changed",
        {"cluster": "a", "from": "down", "to": "healthy", "reasons": [],
         "since": "2024-05-01T11:00:00Z"},
        clock=clock, rng=random.Random(3),
    )  # fmt: skip
    (alert,) = alertmanager_payload(back, "r")["alerts"]
    assert alert["startsAt"] == "2024-05-01T11:00:00.000000Z"


def test_down_to_degraded_resolves_one_alert_and_fires_another() -> None:
    event = cluster_state_changed("a", "down", "degraded", clock=Clock(NOW), rng=random.Random(4))
    payload = alertmanager_payload(event, "r")
    assert payload["status"] == "firing"
    assert {(a["labels"]["alertname"], a["status"]) for a in payload["alerts"]} == {
        ("McobsClusterDown", "resolved"),
        ("McobsClusterDegraded", "firing"),
    }
    assert payload["commonLabels"] == {"cluster": "a"}
    assert payload["externalURL"] == ""


def test_events_without_an_alert_have_no_alertmanager_body() -> None:
    event = cluster_state_changed("a", "unknown", "healthy", clock=Clock(NOW), rng=random.Random(5))
    assert render(PayloadFormat.ALERTMANAGER, event, receiver="r") is None
    assert render(PayloadFormat.STANDARD, event, receiver="r") is not None


def test_service_alerts_name_the_service_and_link_to_it() -> None:
    clock, rng = Clock(NOW), random.Random(6)
    failover = service_failover(
        "default", "web", active=True, from_clusters=["eu-west"], to_clusters=["us-east"],
        clock=clock, rng=rng,
    )  # fmt: skip
    last = service_last_resort("default", "web", active=False, clusters=["a"], clock=clock, rng=rng)
    (alert,) = alertmanager_payload(failover, "r", URL)["alerts"]
    assert alert["labels"] == {
        "alertname": "McobsServiceFailover",
        "namespace": "default",
        "service": "web",
        "severity": "warning",
    }
    assert (
        alert["annotations"]["summary"] == "Service default/web failed over from eu-west to us-east"
    )
    assert alert["generatorURL"] == URL + "/api/v1/services/default/web"
    resolved = alertmanager_payload(last, "r", URL)
    assert resolved["status"] == "resolved"
    assert resolved["groupLabels"] == {"namespace": "default", "service": "web"}
    assert resolved["alerts"][0]["labels"]["alertname"] == "McobsServiceLastResort"


def test_drain_fires_an_info_alert() -> None:
    event = override_drain("eu-west", active=True, reason="maintenance", clock=Clock(NOW),
                           rng=random.Random(7))  # fmt: skip
    (alert,) = alertmanager_payload(event, "r")["alerts"]
    assert alert["labels"]["alertname"] == "McobsClusterDrained"
    assert alert["labels"]["severity"] == "info"
    assert alert["annotations"]["description"] == "maintenance"


def test_a_drained_service_is_its_own_alert() -> None:
    clock, rng = Clock(NOW), random.Random(8)
    data = {
        "cluster": "eu-west",
        "active": False,
        "reason": "canary",
        "scope": "eu-west/default/web",
        "namespace": "default",
        "service": "web",
        "since": "2024-05-01T11:00:00Z",
    }
    event = new_event("override.drain", data, clock=clock, rng=rng)
    whole = override_drain("eu-west", active=True, clock=clock, rng=rng)
    (alert,) = alertmanager_payload(event, "r", URL)["alerts"]
    (cluster_alert,) = alertmanager_payload(whole, "r", URL)["alerts"]
    assert alert["status"] == "resolved"
    assert alert["labels"] == {
        "alertname": "McobsClusterDrained",
        "cluster": "eu-west",
        "namespace": "default",
        "service": "web",
        "severity": "info",
    }
    assert alert["fingerprint"] != cluster_alert["fingerprint"]
    assert alert["annotations"]["summary"] == (
        "Service default/web in cluster eu-west is no longer drained"
    )
    assert alert["generatorURL"] == URL + "/api/v1/services/default/web"
