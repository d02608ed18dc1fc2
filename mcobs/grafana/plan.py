"""What provisioning would change in Grafana, as a value (pure).

The desired objects (folder, datasources, dashboards) are compared with what
Grafana holds; each becomes one `Change`: create, update, unchanged, conflict
(a dashboard somebody changed in Grafana after mcobs wrote it: reported, left
alone) or overwrite (such a dashboard, when forced). The plan is computed
first, shown, and only then applied.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mcobs.grafana.datasources import DatasourceSpec
from mcobs.grafana.stamp import Json, read_stamp, revision

Kind = Literal["folder", "datasource", "dashboard"]
Action = Literal["create", "update", "unchanged", "conflict", "overwrite"]
APPLIED: frozenset[Action] = frozenset({"create", "update", "overwrite"})
_SYMBOL: dict[Action, str] = {
    "create": "+",
    "update": "~",
    "overwrite": "!",
    "conflict": "x",
    "unchanged": "=",
}


@dataclass(frozen=True, slots=True)
class Desired:
    folder_uid: str
    folder_title: str
    datasources: tuple[DatasourceSpec, ...]
    dashboards: tuple[Json, ...]


@dataclass(frozen=True, slots=True)
class Remote:
    """What Grafana holds for each desired uid (None: it has no such object)."""

    folder: Json | None
    datasources: Mapping[str, Json | None]
    dashboards: Mapping[str, Json | None]
    """`GET /api/dashboards/uid/{uid}` answers: `{"dashboard": ..., "meta": ...}`."""


@dataclass(frozen=True, slots=True)
class Change:
    kind: Kind
    uid: str
    title: str
    action: Action
    detail: str = ""
    remote_version: int | None = None
    """The version Grafana holds (folders and dashboards), sent back with an update."""

    def line(self) -> str:
        text = f"{_SYMBOL[self.action]} {self.action:<9} {self.kind:<10} {self.uid} ({self.title})"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]

    @property
    def to_apply(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action in APPLIED)

    @property
    def conflicts(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == "conflict")

    def summary(self) -> str:
        counts = Counter(c.action for c in self.changes)
        parts = [
            f"{counts[a]} to {a}" if a in APPLIED else f"{counts[a]} {a}"
            for a in ("create", "update", "overwrite", "unchanged", "conflict")
            if counts[a]
        ]
        head = "Grafana is up to date" if not self.to_apply else "Grafana needs changes"
        return f"{head}: " + ", ".join(parts)


def _version(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _folder_change(desired: Desired, remote: Json | None) -> Change:
    uid, title = desired.folder_uid, desired.folder_title
    if remote is None:
        return Change("folder", uid, title, "create")
    version = _version(remote.get("version"))
    if remote.get("title") != title:
        detail = f"title {remote.get('title')!r} -> {title!r}"
        return Change("folder", uid, title, "update", detail, version)
    return Change("folder", uid, title, "unchanged", remote_version=version)


def _differences(want: Json, have: Json) -> list[str]:
    found = []
    for key, value in want.items():
        if key == "jsonData":
            current = have.get(key) or {}
            for sub, wanted in value.items():
                if current.get(sub) != wanted:
                    found.append(f"jsonData.{sub} {current.get(sub)!r} -> {wanted!r}")
        elif have.get(key) != value:
            found.append(f"{key} {have.get(key)!r} -> {value!r}")
    return found


def _datasource_change(spec: DatasourceSpec, remote: Json | None) -> Change:
    if remote is None:
        return Change("datasource", spec.uid, spec.name, "create", spec.url)
    differences = _differences(spec.api_body(), remote)
    version = _version(remote.get("version"))
    if differences:
        return Change("datasource", spec.uid, spec.name, "update", "; ".join(differences), version)
    return Change("datasource", spec.uid, spec.name, "unchanged", remote_version=version)


def _dashboard_change(dashboard: Json, folder_uid: str, remote: Json | None, force: bool) -> Change:
    uid, title = str(dashboard["uid"]), str(dashboard.get("title", ""))
    if remote is None:
        return Change("dashboard", uid, title, "create")
    current: Json = remote.get("dashboard") or {}
    meta: Json = remote.get("meta") or {}
    version = _version(current.get("version"))
    mark = read_stamp(current)
    edited = None
    if mark is None:
        edited = "not written by mcobs (no mcobs mark in its description)"
    elif mark.version is None or version is None or version > mark.version:
        edited = f"changed in Grafana after mcobs wrote it (version {version}, mcobs wrote "
        edited += f"{mark.version})" if mark.version is not None else "an unversioned copy)"
    if edited is not None:
        action: Action = "overwrite" if force else "conflict"
        return Change("dashboard", uid, title, action, edited, version)
    assert mark is not None
    reasons = []
    if mark.rev != revision(dashboard):
        reasons.append(f"content rev {mark.rev} -> {revision(dashboard)}")
    if meta.get("folderUid", "") != folder_uid:
        reasons.append(f"folder {meta.get('folderUid')!r} -> {folder_uid!r}")
    if reasons:
        return Change("dashboard", uid, title, "update", "; ".join(reasons), version)
    return Change("dashboard", uid, title, "unchanged", remote_version=version)


def make_plan(desired: Desired, remote: Remote, *, force: bool = False) -> Plan:
    """Every desired object and what to do about it: folder, datasources, dashboards."""
    changes = [_folder_change(desired, remote.folder)]
    changes += [_datasource_change(s, remote.datasources.get(s.uid)) for s in desired.datasources]
    changes += [
        _dashboard_change(d, desired.folder_uid, remote.dashboards.get(str(d["uid"])), force)
        for d in desired.dashboards
    ]
    return Plan(tuple(changes))
