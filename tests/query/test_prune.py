"""Which clusters a query is sent to, and what each of them is asked."""

from __future__ import annotations

import pytest

from mcobs.query.prune import NEVER, Unparsable, plan_matches, plan_query, scan, unquote

CLUSTERS = ("eu-west", "us-east", "ap-south")


def asked(expr: str) -> list[str]:
    return sorted(plan_query(expr, CLUSTERS).queries)


@pytest.mark.parametrize(
    ("expr", "clusters"),
    [
        ('up{cluster="eu-west"}', ["eu-west"]),
        ('up{cluster=~"eu-west|ap-south"}', ["ap-south", "eu-west"]),
        ('up{cluster!="us-east"}', ["ap-south", "eu-west"]),
        ('up{cluster!~"us-.*"}', ["ap-south", "eu-west"]),
        ('up{cluster=~"eu-.*", cluster!="eu-west"}', []),
        ('sum by (job) (rate(http_requests_total{cluster="us-east"}[5m]))', ["us-east"]),
        ('a{cluster="eu-west"} / on(job) b{cluster="us-east"}', ["eu-west", "us-east"]),
        ('up{cluster="nowhere"}', []),
        ('{cluster="ap-south"}', ["ap-south"]),
        ("up{cluster='eu-west'}", ["eu-west"]),
        ('up{"cluster"="eu-west"}', ["eu-west"]),
    ],
)
def test_queries_whose_every_selector_names_clusters_are_pruned(
    expr: str, clusters: list[str]
) -> None:
    assert asked(expr) == clusters


@pytest.mark.parametrize(
    "expr",
    [
        "up",
        'up{cluster="eu-west"} + up',  # the bare `up` can match anywhere
        'up{cluster="eu-west"} or vector(1)',  # vector() makes data from nothing
        'absent(up{cluster="eu-west"})',
        'scalar(up{cluster="eu-west"})',
        "1 + 1",  # no selector at all
        "time()",
        'up{job="x"}',
        'count(up{cluster="eu-west"}) by (cluster) or on() year()',
    ],
)
def test_queries_that_can_answer_elsewhere_go_everywhere(expr: str) -> None:
    assert asked(expr) == sorted(CLUSTERS)


def test_a_query_the_scanner_cannot_read_goes_unchanged_everywhere() -> None:
    plan = plan_query('up{cluster="eu-west"', CLUSTERS)
    assert plan.queries == {c: 'up{cluster="eu-west"' for c in CLUSTERS}
    assert plan.unparsed


def test_cluster_matchers_are_dropped_where_they_hold() -> None:
    plan = plan_query('sum(up{job="api", cluster=~"eu-.*|us-.*"}) by (job)', CLUSTERS)
    assert plan.queries == {
        "eu-west": 'sum(up{job="api"}) by (job)',
        "us-east": 'sum(up{job="api"}) by (job)',
    }
    assert plan.pruned == ("ap-south",)


def test_a_selector_that_cannot_match_a_cluster_matches_nothing_there() -> None:
    plan = plan_query('up{cluster="eu-west"} + on() group_left up', CLUSTERS)
    assert plan.queries["eu-west"] == "up + on() group_left up"
    assert plan.queries["us-east"] == "up{" + NEVER + "} + on() group_left up"


def test_a_selector_left_without_matchers_selects_every_metric() -> None:
    plan = plan_query('count({cluster="us-east"})', CLUSTERS)
    assert plan.queries == {"us-east": 'count({__name__=~".+"})'}
    plan = plan_query('{cluster="us-east", job=~".*"}', CLUSTERS)
    assert plan.queries == {"us-east": '{job=~".*", __name__=~".+"}'}
    plan = plan_query('{cluster="us-east", job="x"}', CLUSTERS)
    assert plan.queries == {"us-east": '{job="x"}'}


def test_original_cluster_matchers_become_cluster_matchers() -> None:
    plan = plan_query('up{original_cluster="k8s-a", cluster="eu-west"}', CLUSTERS)
    assert plan.queries == {"eu-west": 'up{cluster="k8s-a"}'}


def test_queries_without_cluster_matchers_are_sent_as_written() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(x_bucket{job="a"}[5m:1m] offset 1h)))'
    assert plan_query(expr, CLUSTERS).queries == {c: expr for c in CLUSTERS}


def test_scanner_skips_strings_ranges_comments_and_grouping() -> None:
    found = scan(
        'label_replace(up{a="}{"}, "dst", "$1", "src", "(.*)") # up{cluster="x"}\n'
        "* on(instance, job) group_left(node) node_uname_info[5m] @ start() offset -1h30m"
    )
    assert [s.has_name for s in found.selectors] == [True, True]
    assert found.functions == {"label_replace", "start"}
    assert found.selectors[0].matchers[0].value == "}{"


@pytest.mark.parametrize(
    "expr", ["up}", 'up{cluster=~"("}', "up{a}", 'up{a="1" b="2"}', 'up{a="\\q"}']
)
def test_scanner_refuses_what_it_cannot_read(expr: str) -> None:
    with pytest.raises(Unparsable):
        scan(expr)


def test_unquote_handles_prometheus_escapes() -> None:
    assert unquote(r'"a\"b\\c\n\x41\u00e9\101"') == 'a"b\\c\nAéA'
    assert unquote("`raw\\n`") == "raw\\n"
    assert unquote(r"'it\'s'") == "it's"


def test_match_selectors_go_only_where_they_can_match() -> None:
    planned = plan_matches(['up{cluster="eu-west"}', 'node_info{cluster!="eu-west"}'], CLUSTERS)
    assert planned == {
        "ap-south": ("node_info",),
        "eu-west": ("up",),
        "us-east": ("node_info",),
    }
    assert plan_matches([], CLUSTERS) == {c: () for c in CLUSTERS}
    assert plan_matches(['up{cluster="mars"}'], CLUSTERS) == {}
    assert plan_matches(["up{"], ["a"]) == {"a": ("up{",)}
