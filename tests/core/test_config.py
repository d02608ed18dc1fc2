from pathlib import Path

import pytest

from mcobs.cli import main
from mcobs.config import ConfigError, load_settings

GOOD = """
zone: Global.Example.com
dns: {port: 5353, nameservers: [{name: ns1.global.example.com, addresses: [192.0.2.53]}]}
redis: {url: redis://127.0.0.1:6379/0}
clusters:
  - {name: eu-west, region: europe, kubeconfig: /etc/mcobs/kubeconfig, context: eu-west,
     prometheus_url: "http://prometheus.eu-west:9090", weight: 2}
  - {name: us-east, in_cluster: true}
"""

BAD = """
zone: "not a zone!"
dns: {port: 70000}
collect: {interval: 10, stale_after: 5}
clusters:
  - {name: Bad_Name, prometheus_url: nope, weight: -1}
  - {name: ok, in_cluster: true, context: x}
surprise: 1
"""


def test_good_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "mcobs.yaml"
    path.write_text(GOOD)
    settings = load_settings(path)
    assert settings.zone == "global.example.com."
    assert settings.clusters[0].weight == 2
    assert settings.collect.signals[0].query == "sum(up) / count(up)"


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = "\n".join(caught.value.problems)
    for expected in (
        "zone: 'not a zone!' is not a valid domain name",
        "dns.port:",
        "collect: stale_after must be longer than interval",
        "clusters[0].name: must be a DNS label",
        "clusters[0].prometheus_url:",
        "clusters[0].weight:",
        "clusters[1]: in_cluster excludes kubeconfig and context",
        "surprise: Extra inputs are not permitted",
    ):
        assert expected in problems


def test_duplicate_cluster_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("zone: a.example\nclusters: [{name: a}, {name: a}]\n")
    with pytest.raises(ConfigError, match="repeated: a"):
        load_settings(path)


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["check-config", str(good)]) == 0
    assert "ok (zone global.example.com., 2 clusters" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "8 problem(s)" in err and "clusters[0].weight" in err
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 1
    assert main(["check-config", str(_write(tmp_path, "x: [unclosed"))]) == 1
    assert "not valid YAML" in capsys.readouterr().err


def _write(directory: Path, text: str) -> Path:
    path = directory / "f.yaml"
    path.write_text(text)
    return path


def test_the_readme_configuration_reference_is_valid() -> None:
    import re

    import yaml

    from mcobs.config import parse_settings

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("### Configuration reference") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    data = yaml.safe_load(block.group(1))
    # Webhook secrets are read while validating; this machine has no such files.
    data.pop("webhooks")
    settings = parse_settings(data, "README.md")
    assert settings.collect.interval == 3 and settings.dns.strategy == "weighted"
