"""Query parameters of the events API: accepted forms and every problem at once."""

from __future__ import annotations

from datetime import UTC, datetime

from mcobs.decide.query import STREAM_PARAMS, parse_event_query
from mcobs.model import ServiceKey


def test_every_parameter_in_its_accepted_forms() -> None:
    parsed = parse_event_query(
        [
            ("type", "cluster.state_changed,service.failover"),
            ("type", "override.drain"),
            ("cluster", "eu-west"),
            ("service", "default/web"),
            ("since", "2024-05-01T12:00:00+02:00"),
            ("until", "1714564800.5"),
            ("limit", "1000"),
            ("cursor", "1714564800123-4"),
        ]
    )
    assert parsed.problems == ()
    query = parsed.query
    assert query.types == {"cluster.state_changed", "service.failover", "override.drain"}
    assert (query.cluster, query.service) == ("eu-west", ServiceKey("default", "web"))
    assert query.since == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert query.until == datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert (query.limit, query.cursor) == (1000, "1714564800123-4")


def test_defaults() -> None:
    parsed = parse_event_query([])
    assert parsed.problems == ()
    assert parsed.query.limit == 100
    assert not parsed.query.types


def test_every_problem_is_reported() -> None:
    parsed = parse_event_query(
        [
            ("cluster", "EU West"),
            ("cluster", "us-east"),
            ("since", "2024-05-01T12:00:00"),  # no zone
            ("until", "2024-05-01T11:00:00Z"),
            ("limit", "1001"),
            ("limit", "-1"),
        ]
    )
    assert parsed.problems == (
        "cluster: given 2 times; give it once",
        "since: must be RFC 3339 with a zone or Unix seconds, got '2024-05-01T12:00:00'",
        "limit: given 2 times; give it once",
        "limit: must be a whole number from 1 to 1000, got '-1'",
    )


def test_since_must_come_before_until() -> None:
    parsed = parse_event_query([("since", "200"), ("until", "100")])
    assert parsed.problems == ("since: must be before until",)


def test_the_stream_takes_filters_but_not_pages() -> None:
    parsed = parse_event_query(
        [("type", "service.failover"), ("limit", "5"), ("last_event_id", "1-0")],
        allowed=STREAM_PARAMS,
    )
    assert parsed.problems == (
        "limit: unknown parameter (known: type, cluster, service, last_event_id)",
    )
    assert parsed.last_event_id == "1-0"
