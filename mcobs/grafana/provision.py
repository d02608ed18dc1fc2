"""Provisioning through Grafana's HTTP API: read, plan, then apply (octoDNS style).

`provision()` reads the folder, datasources and dashboards mcobs manages,
computes a `Plan` (pure), and applies the changes in order: folder,
datasources, dashboards. A second run against an unchanged Grafana plans
nothing and says so. Synchronous: it is a CLI step (grafana-client speaks
blocking HTTP).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from mcobs.grafana.client import Grafana, GrafanaError
from mcobs.grafana.dashboards import build_dashboards
from mcobs.grafana.datasources import ClusterPrometheus, desired_datasources
from mcobs.grafana.defaults import DEFAULT_FOLDER
from mcobs.grafana.export import folder_uid
from mcobs.grafana.plan import Change, Desired, Plan, Remote, make_plan
from mcobs.grafana.stamp import revision, stamp

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFLICTS = 2


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change
    ok: bool
    message: str = ""
    conflict: bool = False
    """The dashboard changed in Grafana between planning and saving (412)."""


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    plan: Plan
    outcomes: tuple[Outcome, ...] = ()
    dry_run: bool = False

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def conflicts(self) -> tuple[Change, ...]:
        """Dashboards left alone: changed in Grafana (planned, or found while saving)."""
        raced = tuple(o.change for o in self.failed if o.conflict)
        return self.plan.conflicts + raced

    @property
    def exit_code(self) -> int:
        if any(not o.conflict for o in self.failed):
            return EXIT_FAILED
        return EXIT_CONFLICTS if self.conflicts else EXIT_OK

    def lines(self) -> list[str]:
        """What a person reads: every object with its action, then what happened."""
        out = [c.line() for c in self.plan.changes]
        out += [f"FAILED {o.change.kind} {o.change.uid}: {o.message}" for o in self.failed]
        out.append(self.plan.summary())
        if self.dry_run and self.plan.to_apply:
            out.append("dry run: nothing was changed")
        elif self.outcomes:
            done = sum(o.ok for o in self.outcomes)
            out.append(f"applied {done} of {len(self.outcomes)} change(s)")
        if self.conflicts:
            out.append(
                f"{len(self.conflicts)} dashboard(s) changed in Grafana were left alone; "
                "rerun with --force to overwrite them"
            )
        return out


def desired_state(
    *,
    mcobs_url: str,
    clusters: Iterable[ClusterPrometheus] = (),
    folder: str = DEFAULT_FOLDER,
) -> Desired:
    return Desired(
        folder_uid=folder_uid(folder),
        folder_title=folder,
        datasources=desired_datasources(mcobs_url, clusters),
        dashboards=tuple(build_dashboards()),
    )


def read_remote(grafana: Grafana, desired: Desired) -> Remote:
    return Remote(
        folder=grafana.get_folder(desired.folder_uid),
        datasources={s.uid: grafana.get_datasource(s.uid) for s in desired.datasources},
        dashboards={
            str(d["uid"]): grafana.get_dashboard(str(d["uid"])) for d in desired.dashboards
        },
    )


def _apply(grafana: Grafana, desired: Desired, change: Change) -> Outcome:
    try:
        if change.kind == "folder":
            if change.action == "create":
                grafana.create_folder(desired.folder_uid, desired.folder_title)
            else:
                grafana.update_folder(
                    desired.folder_uid, desired.folder_title, change.remote_version or 0
                )
        elif change.kind == "datasource":
            spec = next(s for s in desired.datasources if s.uid == change.uid)
            if change.action == "create":
                grafana.create_datasource(spec.api_body())
            else:
                body = spec.api_body()
                if change.remote_version is not None:
                    body["version"] = change.remote_version
                grafana.update_datasource(spec.uid, body)
        else:
            _save_dashboard(grafana, desired, change)
    except GrafanaError as error:
        if change.kind == "dashboard" and error.status == 412:
            message = f"changed in Grafana while provisioning, left alone ({error})"
            return Outcome(change, False, message, conflict=True)
        return Outcome(change, False, str(error))
    return Outcome(change, True)


def _save_dashboard(grafana: Grafana, desired: Desired, change: Change) -> None:
    dashboard = next(d for d in desired.dashboards if d["uid"] == change.uid)
    base = change.remote_version if change.action != "create" else None
    # Grafana saves an update as version base + 1 and a new dashboard as version 1.
    body = stamp(dashboard, version=(base or 0) + 1)
    body["id"] = None
    if base is not None:
        body["version"] = base
    grafana.save_dashboard(
        body,
        folder_uid=desired.folder_uid,
        overwrite=change.action == "overwrite",
        message=f"mcobs: generated dashboard rev {revision(dashboard)}",
    )


def provision(
    grafana: Grafana, desired: Desired, *, force: bool = False, dry_run: bool = False
) -> ProvisionResult:
    """Bring Grafana to `desired`; dashboards changed in Grafana are left alone unless `force`.

    Raises `GrafanaError` when Grafana cannot be read (unreachable, bad token).
    """
    plan = make_plan(desired, read_remote(grafana, desired), force=force)
    if dry_run or not plan.to_apply:
        return ProvisionResult(plan, dry_run=dry_run)
    outcomes = []
    for change in plan.to_apply:
        outcome = _apply(grafana, desired, change)
        if outcome.ok:
            log.info("grafana: %s %s %s", change.action, change.kind, change.uid)
        outcomes.append(outcome)
    return ProvisionResult(plan, tuple(outcomes))


def provision_grafana(
    url: str,
    token: str,
    *,
    mcobs_url: str,
    clusters: Iterable[ClusterPrometheus] = (),
    folder: str = DEFAULT_FOLDER,
    force: bool = False,
    dry_run: bool = False,
) -> ProvisionResult:
    """`provision()` against the Grafana at `url` with a service account `token`."""
    grafana = Grafana(url, token)
    try:
        desired = desired_state(mcobs_url=mcobs_url, clusters=clusters, folder=folder)
        return provision(grafana, desired, force=force, dry_run=dry_run)
    finally:
        grafana.close()
