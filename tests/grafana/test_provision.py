"""Provisioning through Grafana's HTTP API, against the fake Grafana over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from mcobs.grafana.cli import main
from mcobs.grafana.datasources import ClusterPrometheus
from mcobs.grafana.provision import (
    EXIT_CONFLICTS,
    EXIT_FAILED,
    EXIT_OK,
    ProvisionResult,
    provision_grafana,
)
from mcobs.grafana.stamp import read_stamp
from tests.grafana.fake_grafana import FakeGrafana

MCOBS = "http://mcobs.mcobs.svc:8080"
CLUSTERS = (
    ClusterPrometheus("eu-west", "http://prometheus.eu-west.example:9090"),
    ClusterPrometheus("us-east", "http://prometheus.us-east.example:9090/"),
)
DASHBOARDS = 5


async def run(fake: FakeGrafana, **options: object) -> ProvisionResult:
    kwargs: dict[str, object] = {"mcobs_url": MCOBS, "clusters": CLUSTERS, **options}
    return await asyncio.to_thread(provision_grafana, fake.url, fake.token, **kwargs)  # type: ignore[arg-type]


def actions(result: ProvisionResult) -> dict[str, str]:
    return {f"{c.kind}:{c.uid}": c.action for c in result.plan.changes}


def writes(fake: FakeGrafana) -> list[tuple[str, str]]:
    return [r for r in fake.requests if r[0] != "GET"]


async def test_first_run_creates_everything(fake_grafana: FakeGrafana) -> None:
    result = await run(fake_grafana)
    assert result.exit_code == EXIT_OK
    assert set(actions(result).values()) == {"create"}
    assert fake_grafana.folders["mcobs"]["title"] == "mcobs"
    assert fake_grafana.datasources["mcobs"]["url"] == MCOBS
    assert fake_grafana.datasources["mcobs"]["type"] == "prometheus"
    assert fake_grafana.datasources["mcobs-prom-us-east"]["url"] == (
        "http://prometheus.us-east.example:9090"
    )
    assert len(fake_grafana.dashboards) == DASHBOARDS
    for stored in fake_grafana.dashboards.values():
        assert stored.folder_uid == "mcobs"
        assert stored.version == 1
        stamp = read_stamp(stored.dashboard)
        assert stamp is not None and stamp.version == 1
    # Folder first, then datasources, then dashboards.
    order = [path.split("/")[2] for _, path in writes(fake_grafana)]
    assert order == ["folders"] + ["datasources"] * 3 + ["dashboards"] * DASHBOARDS
    assert "Grafana needs changes: 9 to create" in result.lines()


async def test_second_run_changes_nothing_and_says_so(fake_grafana: FakeGrafana) -> None:
    await run(fake_grafana)
    before = len(writes(fake_grafana))
    result = await run(fake_grafana)
    assert set(actions(result).values()) == {"unchanged"}
    assert len(writes(fake_grafana)) == before
    assert result.lines()[-1] == "Grafana is up to date: 9 unchanged"
    assert result.exit_code == EXIT_OK


async def test_changed_settings_update_in_place(fake_grafana: FakeGrafana) -> None:
    await run(fake_grafana)
    result = await run(fake_grafana, mcobs_url="http://mcobs-new:8080", folder="Fleet")
    found = actions(result)
    assert found["datasource:mcobs"] == "update"
    assert found["datasource:mcobs-prom-eu-west"] == "unchanged"
    assert found["folder:fleet"] == "create"
    assert all(found[f"dashboard:{uid}"] == "update" for uid in fake_grafana.dashboards)
    assert fake_grafana.datasources["mcobs"]["url"] == "http://mcobs-new:8080"
    assert {d.folder_uid for d in fake_grafana.dashboards.values()} == {"fleet"}
    assert {d.version for d in fake_grafana.dashboards.values()} == {2}
    again = await run(fake_grafana, mcobs_url="http://mcobs-new:8080", folder="Fleet")
    assert set(actions(again).values()) == {"unchanged"}


async def test_dashboard_changed_in_grafana_is_reported_not_overwritten(
    fake_grafana: FakeGrafana,
) -> None:
    await run(fake_grafana)
    fake_grafana.edit_dashboard("mcobs-dns", title="DNS (tuned by hand)")
    result = await run(fake_grafana)
    assert actions(result)["dashboard:mcobs-dns"] == "conflict"
    assert result.exit_code == EXIT_CONFLICTS
    assert fake_grafana.dashboards["mcobs-dns"].dashboard["title"] == "DNS (tuned by hand)"
    text = "\n".join(result.lines())
    assert "changed in Grafana after mcobs wrote it (version 2, mcobs wrote 1)" in text
    assert "rerun with --force" in text

    forced = await run(fake_grafana, force=True)
    assert actions(forced)["dashboard:mcobs-dns"] == "overwrite"
    assert forced.exit_code == EXIT_OK
    assert fake_grafana.dashboards["mcobs-dns"].dashboard["title"] == "mcobs / DNS"
    assert set(actions(await run(fake_grafana)).values()) == {"unchanged"}


async def test_dashboard_not_made_by_mcobs_is_left_alone(fake_grafana: FakeGrafana) -> None:
    await run(fake_grafana)
    fake_grafana.edit_dashboard("mcobs-fleet", description="ours now")
    result = await run(fake_grafana)
    change = next(c for c in result.plan.changes if c.uid == "mcobs-fleet")
    assert change.action == "conflict"
    assert "not written by mcobs" in change.detail


async def test_a_save_racing_a_person_is_a_conflict(fake_grafana: FakeGrafana) -> None:
    await run(fake_grafana)
    fake_grafana.edit_before_save.add("mcobs-dns")
    result = await run(fake_grafana, mcobs_url="http://elsewhere:8080", folder="Other")
    raced = [o for o in result.outcomes if o.conflict]
    assert [o.change.uid for o in raced] == ["mcobs-dns"]
    assert "412" in raced[0].message
    assert result.exit_code == EXIT_CONFLICTS


async def test_dry_run_changes_nothing(fake_grafana: FakeGrafana) -> None:
    result = await run(fake_grafana, dry_run=True)
    assert set(actions(result).values()) == {"create"}
    assert writes(fake_grafana) == []
    assert result.lines()[-1] == "dry run: nothing was changed"


async def test_wrong_token_fails_clearly_without_leaking(
    fake_grafana: FakeGrafana, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("glsa_wrong-token-do-not-print\n")
    code = await asyncio.to_thread(
        main, ["grafana", "provision", "--url", fake_grafana.url, "--token-file", str(token_file)]
    )
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "HTTP 401: Unauthorized" in err
    assert "glsa_wrong" not in out + err
    assert fake_grafana.folders == {}


async def test_cli_provisions_and_never_prints_the_token(
    fake_grafana: FakeGrafana,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(fake_grafana.token + "\n")
    config = tmp_path / "mcobs.yaml"
    config.write_text(
        "zone: global.example.com\n"
        "clusters:\n"
        "  - {name: eu-west, prometheus_url: 'http://prom.eu-west:9090'}\n"
        "  - {name: ap-south}\n"
    )
    argv = [
        "grafana",
        "provision",
        "--url",
        fake_grafana.url + "/",
        "--token-file",
        str(token_file),
        "--config",
        str(config),
        "--mcobs-url",
        MCOBS,
        "--folder",
        "mcobs",
    ]
    assert await asyncio.to_thread(main, argv) == EXIT_OK
    assert set(fake_grafana.datasources) == {"mcobs", "mcobs-prom-eu-west"}
    assert await asyncio.to_thread(main, argv) == EXIT_OK
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("Grafana is up to date: 8 unchanged")
    assert fake_grafana.token not in out + err + caplog.text

    fake_grafana.edit_dashboard("mcobs-cluster")
    assert await asyncio.to_thread(main, argv) == EXIT_CONFLICTS
    assert await asyncio.to_thread(main, [*argv, "--force"]) == EXIT_OK


async def test_unreachable_grafana(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("glsa_secret")
    url = "http://admin:hunter2@127.0.0.1:9"  # discard port: nothing listens
    argv = ["grafana", "provision", "--url", url, "--token-file", str(token_file)]
    assert await asyncio.to_thread(main, argv) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("grafana at http://127.0.0.1:9: ")
    assert "hunter2" not in err and "glsa_secret" not in err


def test_missing_or_empty_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["grafana", "provision", "--url", "http://127.0.0.1:9", "--token-file"]
    assert main([*argv, str(tmp_path / "absent")]) == EXIT_FAILED
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert main([*argv, str(empty)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "cannot read the token file" in err and "is empty" in err
