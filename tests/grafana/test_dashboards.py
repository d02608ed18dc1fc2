"""The generated dashboards: checked in, stable, and reading only metrics mcobs exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mcobs.grafana.dashboards import build_dashboards
from mcobs.grafana.export import export_dashboards
from mcobs.grafana.stamp import canonical, read_stamp, revision
from mcobs.metrics.spec import SPECS

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = (
    "regenerate with `python -m mcobs.grafana.cli grafana export --dashboards-only dashboards` "
    "and `python -m mcobs.grafana.cli grafana export deploy/grafana`"
)
UIDS = {"mcobs-fleet", "mcobs-services", "mcobs-dns", "mcobs-failover", "mcobs-cluster"}
SCHEMA_VERSION = 41  # Grafana 11.6 / 12


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # inside collapsed rows
    return found


def exprs(dashboard: dict[str, Any]) -> list[str]:
    out = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    out += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return out


def tree(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): p.read_text(encoding="utf-8")
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.suffix in (".json", ".yaml")
    }


@pytest.fixture(scope="module")
def dashboards() -> list[dict[str, Any]]:
    return build_dashboards()


def test_checked_in_dashboards_match_the_generator(dashboards: list[dict[str, Any]]) -> None:
    checked_in = {
        p.name: p.read_text(encoding="utf-8") for p in (ROOT / "dashboards").glob("*.json")
    }
    generated = {f"{d['uid']}.json": canonical(d) for d in dashboards}
    assert checked_in == generated, REGENERATE


def test_checked_in_grafana_provisioning_matches_the_generator(tmp_path: Path) -> None:
    export_dashboards(tmp_path)
    assert tree(ROOT / "deploy" / "grafana") == tree(tmp_path), REGENERATE


def test_stable_uids_and_current_schema(dashboards: list[dict[str, Any]]) -> None:
    assert {d["uid"] for d in dashboards} == UIDS
    again = build_dashboards()
    assert [canonical(d) for d in again] == [canonical(d) for d in dashboards]
    for dashboard in dashboards:
        assert dashboard["schemaVersion"] == SCHEMA_VERSION
        assert "mcobs" in dashboard["tags"]
        assert dashboard.get("id") is None and "version" not in dashboard
        stamp = read_stamp(dashboard)
        assert stamp is not None and stamp.rev == revision(dashboard)
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), dashboard["uid"]


def test_every_dashboard_reads_the_datasource_variable(dashboards: list[dict[str, Any]]) -> None:
    for dashboard in dashboards:
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        source = variables["datasource"]
        assert source["type"] == "datasource" and source["query"] == "prometheus"
        offered = re.compile(source["regex"].strip("/"))
        assert offered.match("prometheus-hub")
        assert not offered.match("mcobs") and not offered.match("mcobs eu-west Prometheus")
        for panel in panels(dashboard):
            if panel["type"] in ("row", "annolist"):
                continue
            uid = panel["datasource"]["uid"]
            if uid == "mcobs":  # the global query: member clusters' own metrics only
                assert all("mcobs_" not in t["expr"] for t in panel["targets"])
            else:
                assert uid == "${datasource}", panel["title"]


def test_cluster_drill_down_has_cluster_variable(dashboards: list[dict[str, Any]]) -> None:
    cluster = next(d for d in dashboards if d["uid"] == "mcobs-cluster")
    variables = {v["name"]: v for v in cluster["templating"]["list"]}
    assert variables["cluster"]["query"] == "label_values(mcobs_cluster_up, cluster)"
    assert variables["cluster"]["datasource"]["uid"] == "${datasource}"
    selecting = [e for e in exprs(cluster) if 'cluster="$cluster"' in e]
    assert len(selecting) >= 6


def test_queries_use_only_exposed_metrics(dashboards: list[dict[str, Any]]) -> None:
    known = {s.name for s in SPECS}
    histograms = {s.name for s in SPECS if s.kind == "histogram"}
    used = set()
    for dashboard in dashboards:
        for expr in exprs(dashboard):
            for name in re.findall(r"\bmcobs_[a-z_]+", expr):
                base = re.sub(r"_(bucket|count|sum)$", "", name)
                assert name in known or base in histograms, f"{dashboard['uid']}: {name}"
                used.add(base if base in histograms else name)
    # The headline metrics each appear on some dashboard.
    for name in (
        "mcobs_cluster_up",
        "mcobs_cluster_health_score",
        "mcobs_service_in_answer",
        "mcobs_service_ready_endpoints",
        "mcobs_service_answer_weight",
        "mcobs_dns_queries_total",
        "mcobs_dns_responses_total",
        "mcobs_dns_response_seconds",
        "mcobs_failovers_total",
        "mcobs_last_failover_timestamp_seconds",
        "mcobs_collector_errors_total",
    ):
        assert name in used, name


def test_failovers_show_as_annotations(dashboards: list[dict[str, Any]]) -> None:
    for dashboard in dashboards:
        queries = dashboard["annotations"]["list"]
        tags = [q["target"]["tags"] for q in queries if "target" in q]
        assert ["mcobs", "failover"] in tags
        assert ["mcobs", "recovery"] in tags


def test_files_are_plain_json(dashboards: list[dict[str, Any]]) -> None:
    for dashboard in dashboards:
        assert json.loads(canonical(dashboard)) == dashboard


def test_queries_are_valid_promql(dashboards: list[dict[str, Any]]) -> None:
    promql_parser = pytest.importorskip("promql_parser")
    for dashboard in dashboards:
        for expr in exprs(dashboard):
            if expr.startswith("label_values("):
                continue
            concrete = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
            concrete = re.sub(r"\$\w+", "x", concrete)
            promql_parser.parse(concrete)  # raises on a syntax error
