"""Prometheus scrape configuration and alert rules for mcobs, checked with the real tools.

`promtool check config`, `promtool check rules` and the rules' unit tests
(`promtool test rules`) run as they would in CI of a monitoring repository.
A real Prometheus server applies the Kubernetes job's relabelling to the
targets the `role: pod` discovery would produce, and (slow) scrapes a running
`mcobs demo` and evaluates the rules against what mcobs really exposes. The
rules may only use metrics and labels from `mcobs/metrics/spec.py`.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcobs.metrics.dns import RCODES
from mcobs.metrics.recorders import COLLECTOR_ERROR_KINDS, DECISION_KINDS
from mcobs.metrics.spec import BY_NAME, SPECS
from mcobs.notify.stats import RESULTS
from tests.deploy.support import PROMETHEUS, RUNBOOK, Doc, documents, tool
from tests.redis_server import free_port

RULES = PROMETHEUS / "rules" / "mcobs.rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "mcobs.rules.test.yml"
KUBERNETES_CONFIG = PROMETHEUS / "prometheus.yml"
STATIC_CONFIG = PROMETHEUS / "prometheus-static.yml"

KNOWN_VALUES = {
    ("mcobs_collector_errors_total", "kind"): COLLECTOR_ERROR_KINDS | {"other"},
    ("mcobs_decisions_total", "kind"): frozenset(DECISION_KINDS) | {"other"},
    ("mcobs_dns_responses_total", "rcode"): RCODES,
    ("mcobs_webhook_deliveries_total", "result"): frozenset(RESULTS),
}
"""Label values mcobs can emit, for matchers that name one."""


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROMETHEUS,
    )


def alerts() -> list[Doc]:
    return [rule for group in documents(RULES)[0]["groups"] for rule in group["rules"]]


# -- promtool --------------------------------------------------------------------------------


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_static_scrape_config_passes_promtool_check() -> None:
    result = promtool("check", "config", str(STATIC_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def as_file_sd(config: Doc, targets: Path) -> Doc:
    """The Kubernetes job with its discovery swapped for a file: same relabelling."""
    copy: Doc = json.loads(json.dumps(config))
    for job in copy["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["file_sd_configs"] = [{"files": [str(targets)], "refresh_interval": "1s"}]
    copy["rule_files"] = [str(RULES)]
    copy.pop("alerting", None)
    return copy


def test_kubernetes_scrape_config_passes_promtool_check(tmp_path: Path) -> None:
    result = promtool("check", "config", str(KUBERNETES_CONFIG))
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian's Prometheus is built without Kubernetes discovery: check the rest.
        converted = tmp_path / "prometheus.yml"
        config = as_file_sd(documents(KUBERNETES_CONFIG)[0], tmp_path / "targets.json")
        converted.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = promtool("check", "config", str(converted))
    assert result.returncode == 0, result.stdout + result.stderr


# -- the relabelling, applied by a real Prometheus ------------------------------------------


def pod_targets(pod: str, address: str, ports: dict[str, int]) -> list[Doc]:
    """What `kubernetes_sd_configs: role: pod` yields for one pod: a group per container port."""
    return [
        {
            "targets": [f"{address}:{number}"],
            "labels": {
                "__meta_kubernetes_namespace": "mcobs",
                "__meta_kubernetes_pod_name": pod,
                "__meta_kubernetes_pod_node_name": "node-1",
                "__meta_kubernetes_pod_label_app_kubernetes_io_name": "mcobs",
                "__meta_kubernetes_pod_container_name": "mcobs",
                "__meta_kubernetes_pod_container_port_name": name,
                "__meta_kubernetes_pod_container_port_number": str(number),
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
                "__meta_kubernetes_pod_annotation_prometheus_io_port": "8080",
                "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
            },
        }
        for name, number in ports.items()
    ]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for(check: Callable[[], Any], limit: float, what: str) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            found = check()
            if found:
                return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def prometheus_server(config: Doc, workdir: Path) -> Iterator[str]:
    """A real Prometheus on a free loopback port; yields its base URL."""
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (workdir / "prometheus.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_json(f"{base}/api/v1/status/buildinfo"), 20, "Prometheus to start")
        yield base
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_kubernetes_job_scrapes_each_pod_once_on_its_http_port(tmp_path: Path) -> None:
    targets = tmp_path / "targets.json"
    ports = {"dns-udp": 5353, "dns-tcp": 5353, "http": 8080}
    groups = pod_targets("mcobs-7d9f-a", "127.0.0.11", ports)
    groups += pod_targets("mcobs-7d9f-b", "127.0.0.12", ports)
    targets.write_text(json.dumps(groups), encoding="utf-8")
    config = as_file_sd(documents(KUBERNETES_CONFIG)[0], targets)
    with prometheus_server(config, tmp_path) as base:
        found = wait_for(
            lambda: get_json(f"{base}/api/v1/targets?state=any")["data"]["droppedTargets"],
            20,
            "service discovery",
        )
        data = get_json(f"{base}/api/v1/targets?state=any")["data"]
    active = sorted(data["activeTargets"], key=lambda t: t["labels"]["pod"])
    assert len(found) == 4  # the DNS ports of both pods
    assert [t["scrapeUrl"] for t in active] == [
        "http://127.0.0.11:8080/metrics",
        "http://127.0.0.12:8080/metrics",
    ]
    assert active[0]["labels"] == {
        "job": "mcobs",
        "instance": "127.0.0.11:8080",
        "pod": "mcobs-7d9f-a",
        "kubernetes_namespace": "mcobs",
        "node": "node-1",
    }


def target_labels() -> set[str]:
    config = documents(KUBERNETES_CONFIG)[0]
    labels = {"job", "instance"}
    for job in config["scrape_configs"]:
        for step in job.get("relabel_configs", []):
            target = step.get("target_label", "")
            if target and not target.startswith("__"):
                labels.add(target)
    return labels


def test_target_labels_never_clash_with_mcobs_labels() -> None:
    mcobs_labels = {label for spec in SPECS for label in spec.labels}
    assert not target_labels() & mcobs_labels


# -- the rules -----------------------------------------------------------------------------------


def selectors_and_groupings(expr: str) -> tuple[list[Any], set[str]]:
    promql_parser = pytest.importorskip("promql_parser")
    selectors: list[Any] = []
    grouping: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            grouping.update(matching.labels if matching is not None else ())

    promql_parser.walk(promql_parser.parse(expr), visit)
    return selectors, grouping


def test_rules_use_only_metrics_and_labels_mcobs_exposes() -> None:
    histograms = {s.name for s in SPECS if s.kind == "histogram"}
    targets = target_labels()
    for rule in alerts():
        selectors, grouping = selectors_and_groupings(rule["expr"])
        available: set[str] = set()
        for selector in selectors:
            name = selector.name
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name == "up":
                labels = set(targets)
            elif name in BY_NAME:
                labels = set(BY_NAME[name].labels) | targets
            elif base in histograms:
                labels = set(BY_NAME[base].labels) | targets | {"le"}
            else:
                raise AssertionError(f"{rule['alert']}: {name} is not a metric mcobs exposes")
            available |= labels
            for matcher in selector.matchers.matchers:
                assert matcher.name in labels, f"{rule['alert']}: {name} has no {matcher.name}"
                known = KNOWN_VALUES.get((name, matcher.name))
                if known is not None and re.fullmatch(r"[A-Za-z_]+", matcher.value):
                    assert matcher.value in known, f"{rule['alert']}: {matcher}"
        assert grouping <= available, f"{rule['alert']}: {grouping - available}"


def test_every_alert_fires_in_a_unit_test() -> None:
    tests = documents(RULE_TESTS)[0]["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in alerts()}
    assert names == fired
    assert names == quiet  # and stays quiet when it should


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_text_a_severity_and_a_runbook_section() -> None:
    runbook = RUNBOOK.read_text(encoding="utf-8")
    anchors = {github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", runbook, re.MULTILINE)}
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        link = annotations["runbook"]
        assert link == f"deploy/RUNBOOK.md#{name.lower()}", name
        assert link.split("#")[1] in anchors, f"RUNBOOK.md has no section {name}"


# -- against a running hub (slow) -------------------------------------------------------------


@contextlib.contextmanager
def demo(http_port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcobs",
            "demo",
            "--dns-port",
            str(free_port()),
            "--http-port",
            str(http_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: get_json(f"http://127.0.0.1:{http_port}/readyz")["status"] == "ready",
            30,
            "the demo hub",
        )
        yield
    finally:
        process.terminate()
        process.wait(10)


def query(base: str, promql: str) -> list[Doc]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result: list[Doc] = get_json(url)["data"]["result"]
    return result


@pytest.mark.slow
def test_rules_evaluate_against_a_running_hub(tmp_path: Path) -> None:
    http_port = free_port()
    targets = tmp_path / "targets.json"
    groups = pod_targets("mcobs-demo", "127.0.0.1", {"dns-udp": 5353, "http": http_port})
    targets.write_text(json.dumps(groups), encoding="utf-8")
    config = as_file_sd(documents(KUBERNETES_CONFIG)[0], targets)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    for job in config["scrape_configs"]:
        job.update(scrape_interval="1s", scrape_timeout="1s")
    with demo(http_port), prometheus_server(config, tmp_path) as base:
        wait_for(lambda: query(base, 'up{job="mcobs"} == 1'), 30, "a successful scrape")

        def all_rules_evaluated() -> bool:
            groups = get_json(f"{base}/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if len(rules) != len(alerts()):
                return False
            bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] == "err"]
            assert not bad, bad
            return all(r["health"] == "ok" for r in rules)

        wait_for(all_rules_evaluated, 20, "every rule to be evaluated")
        # mcobs' own namespace/service labels arrive untouched.
        assert query(base, 'mcobs_cluster_up{cluster="us-east", pod="mcobs-demo"}')
        assert not query(base, '{__name__=~"mcobs_.+", exported_namespace!=""}')
        assert not query(base, 'ALERTS{alertname="McobsClusterDown"}')

        outage = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/api/v1/sim/clusters/us-east/outage", method="POST"
        )
        urllib.request.urlopen(outage, timeout=5).close()
        pending = wait_for(
            lambda: query(base, 'ALERTS{alertname="McobsClusterDown", alertstate="pending"}'),
            30,
            "McobsClusterDown to be pending",
        )
    assert [a["metric"]["cluster"] for a in pending] == ["us-east"]
    assert pending[0]["metric"]["region"] == "us-east"
