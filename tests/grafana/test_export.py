"""`mcobs grafana export DIR`: the files Grafana's file provisioning reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mcobs.grafana.cli import main
from mcobs.grafana.datasources import ClusterPrometheus, cluster_datasource_uid
from mcobs.grafana.export import export_dashboards, folder_uid

CONFIG = """\
zone: global.example.com
clusters:
  - {name: us-east, prometheus_url: "http://prom.us-east:9090"}
  - {name: eu-west, prometheus_url: "http://prom.eu-west:9090/"}
  - {name: ap-south}
"""


def test_export_writes_grafana_file_provisioning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mcobs.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "grafana"
    argv = ["grafana", "export", str(out), "--config", str(config)]
    assert main([*argv, "--mcobs-url", "http://hub:8080/", "--folder", "Fleet"]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 7

    sources = yaml.safe_load((out / "provisioning/datasources/mcobs.yaml").read_text())
    assert sources["apiVersion"] == 1
    by_uid = {s["uid"]: s for s in sources["datasources"]}
    assert list(by_uid) == ["mcobs", "mcobs-prom-eu-west", "mcobs-prom-us-east"]
    assert by_uid["mcobs"]["url"] == "http://hub:8080"
    assert by_uid["mcobs"]["type"] == "prometheus"
    assert by_uid["mcobs-prom-eu-west"]["url"] == "http://prom.eu-west:9090"

    providers = yaml.safe_load((out / "provisioning/dashboards/mcobs.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "Fleet" and provider["folderUid"] == "fleet"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/mcobs"

    dashboards = sorted(p.name for p in (out / "dashboards").iterdir())
    assert dashboards == [
        "mcobs-cluster.json",
        "mcobs-dns.json",
        "mcobs-failover.json",
        "mcobs-fleet.json",
        "mcobs-services.json",
    ]
    assert json.loads((out / "dashboards/mcobs-dns.json").read_text())["uid"] == "mcobs-dns"


def test_export_replaces_stale_dashboards_only(tmp_path: Path) -> None:
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards/mcobs-retired.json").write_text("{}")
    (tmp_path / "dashboards/team-board.json").write_text("{}")
    export_dashboards(tmp_path)
    names = {p.name for p in (tmp_path / "dashboards").iterdir()}
    assert "mcobs-retired.json" not in names
    assert "team-board.json" in names


def test_bad_config_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("zone: x\nclusters: []\n")
    assert main(["grafana", "export", str(tmp_path / "out"), "--config", str(config)]) == 1
    assert "problem(s)" in capsys.readouterr().err


def test_uids_stay_within_grafana_limits() -> None:
    assert cluster_datasource_uid("eu-west") == "mcobs-prom-eu-west"
    long = cluster_datasource_uid("a" * 63)
    assert len(long) == 40 and long.startswith("mcobs-prom-aaaa")
    assert long != cluster_datasource_uid("a" * 62 + "b")
    assert folder_uid("Platform / Fleet") == "platform-fleet"
    assert folder_uid("???") == "mcobs"
    assert ClusterPrometheus("x", "http://p").cluster == "x"
