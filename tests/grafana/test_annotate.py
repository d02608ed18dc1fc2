"""Failover annotations reach Grafana in the background and never hurt the caller."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any

import pytest

from mcobs.grafana.annotate import Annotator, event_annotation, grafana_annotator
from mcobs.grafana.client import Grafana
from mcobs.notify.event import Event, new_event
from tests.grafana.fake_grafana import FakeGrafana


def event(type_: str, data: dict[str, Any], at: float = 1.0) -> Event:
    return new_event(type_, data, clock=lambda: at, rng=random.Random(7))


def failover(at: float = 1.0, *, active: bool = True, cluster: str = "us-east") -> Event:
    before, after = [cluster, "eu-west"], ["eu-west"]
    return event(
        "service.failover",
        {
            "namespace": "default",
            "service": "web",
            "active": active,
            "reasons": [f"{cluster}: cluster is down"] if active else [],
            "from": before if active else after,
            "to": after if active else before,
        },
        at,
    )


async def test_failover_and_recovery_become_tagged_annotations(fake_grafana: FakeGrafana) -> None:
    annotator = grafana_annotator(fake_grafana.url, fake_grafana.token)
    annotator.start()
    annotator.record(failover(1_700_000_000.25))
    annotator.record(failover(1_700_000_060.0, active=False))
    await annotator.stop()
    assert annotator.sent == 2
    first, second = fake_grafana.annotations
    assert first["time"] == 1_700_000_000_250
    assert first["tags"] == ["mcobs", "failover", "service:default/web", "cluster:us-east"]
    assert first["text"] == (
        "failover of default/web: us-east, eu-west -> eu-west (us-east: cluster is down)"
    )
    assert second["tags"] == ["mcobs", "recovery", "service:default/web", "cluster:us-east"]
    assert second["text"] == "recovery of default/web: eu-west -> us-east, eu-west"
    assert "dashboardUID" not in first  # organisation-wide: every mcobs dashboard shows it


def test_every_decision_kind_has_an_annotation() -> None:
    state = event(
        "cluster.state_changed",
        {"cluster": "ap-south", "reasons": ["API unreachable"], "from": "healthy", "to": "down"},
    )
    assert event_annotation(state).tags == (
        "mcobs",
        "cluster_state",
        "state:down",
        "cluster:ap-south",
    )
    assert event_annotation(state).text == "cluster ap-south: healthy -> down (API unreachable)"
    last = event(
        "service.last_resort",
        {
            "namespace": "shop",
            "service": "api",
            "active": True,
            "clusters": ["a", "b"],
            "reasons": ["no cluster can serve"],
        },
    )
    assert event_annotation(last).tags == (
        "mcobs",
        "last_resort",
        "service:shop/api",
        "cluster:a",
        "cluster:b",
    )
    drain = event("override.drain", {"cluster": "a", "active": False, "reason": "maintenance over"})
    assert event_annotation(drain).tags == ("mcobs", "undrain", "cluster:a")
    assert event_annotation(drain).text == "undrain of cluster a (maintenance over)"


async def test_transient_failures_are_retried(fake_grafana: FakeGrafana) -> None:
    fake_grafana.fail_annotations = 2
    annotator = grafana_annotator(fake_grafana.url, fake_grafana.token, retry_delay=0)
    annotator.start()
    annotator.record(failover())
    await annotator.stop()
    assert annotator.sent == 1 and annotator.failed == 0
    assert len(fake_grafana.annotations) == 1
    assert fake_grafana.requests.count(("POST", "/api/annotations")) == 3


async def test_failures_are_logged_never_raised(
    fake_grafana: FakeGrafana, caplog: pytest.LogCaptureFixture
) -> None:
    token = "glsa_revoked-token-never-logged"
    annotator = grafana_annotator(fake_grafana.url, token, retry_delay=0)
    annotator.start()
    annotator.record(failover())  # Grafana answers 401: not retried
    await annotator.stop()
    assert annotator.failed == 1 and annotator.sent == 0
    assert fake_grafana.requests.count(("POST", "/api/annotations")) == 1
    assert "grafana annotation not sent" in caplog.text and "401" in caplog.text
    assert token not in caplog.text


async def test_unreachable_grafana_does_not_hold_up_stop(caplog: pytest.LogCaptureFixture) -> None:
    grafana = Grafana("http://127.0.0.1:9", "t")
    annotator = Annotator(grafana, retry_delay=0, attempts=2, on_stop=grafana.close)
    annotator.start()
    annotator.record(failover(active=False))
    await annotator.stop(flush_for=5.0)
    assert annotator.failed == 1
    assert "cannot reach Grafana" in caplog.text


class BlockingSink:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[str] = []

    def add_annotation(self, *, time_ms: int, tags: list[str], text: str) -> object:
        self.release.wait(5)
        self.received.append(text)
        return {}


async def test_a_slow_grafana_never_blocks_the_caller() -> None:
    sink = BlockingSink()
    annotator = Annotator(sink, max_pending=2)
    annotator.start()
    annotator.record(failover(cluster="a"))
    await asyncio.sleep(0.05)  # the sender takes the first one and blocks in its thread
    for cluster in ("b", "c", "d"):  # returns at once even though nothing is being sent
        annotator.record(failover(cluster=cluster))
    assert annotator.pending == 2
    assert annotator.dropped == 1
    sink.release.set()
    await annotator.stop()
    assert [t.split()[3] for t in sink.received] == ["a,", "b,", "c,"]


async def test_stop_without_start_and_twice() -> None:
    sink = BlockingSink()
    sink.release.set()
    annotator = Annotator(sink)
    await annotator.stop()
    annotator.start()
    await annotator.stop()
    await annotator.stop()


def test_calls_do_not_need_a_running_sender() -> None:
    annotator = Annotator(BlockingSink())
    annotator.record(failover())
    annotator.record(failover(active=False))
    assert annotator.pending == 2


def test_a_malformed_event_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    annotator = Annotator(BlockingSink())
    nothing: Any = None
    broken = Event(
        "evt_01HX0000000000000000000000", "service.failover", failover().occurred_at, nothing
    )
    annotator.record(broken)
    assert annotator.pending == 0
    assert "cannot describe event" in caplog.text


@pytest.fixture(autouse=True)
def _capture_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mcobs.grafana.annotate")
