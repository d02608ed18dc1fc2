"""The mark mcobs leaves in each dashboard it writes: a content hash and a version.

The mark sits at the end of the dashboard's `description`, e.g.
`[mcobs rev 3f2a9c0d1e4b v7]`: `rev` is a hash of the generated dashboard,
`v7` the Grafana version mcobs' own save produced. When Grafana reports a newer
version than the mark, somebody saved the dashboard after mcobs did. Files
written for file provisioning carry the rev only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

_MARK = re.compile(r"\s*\[mcobs rev (?P<rev>[0-9a-f]{12})(?: v(?P<version>\d+))?\]\s*$")
VOLATILE = ("id", "version")
"""Keys Grafana sets on save; never part of the content hash."""


@dataclass(frozen=True, slots=True)
class Stamp:
    rev: str
    version: int | None = None


def canonical(value: Any) -> str:
    """The one text form mcobs writes JSON in: sorted keys, two-space indent, final newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _without_mark(description: str) -> str:
    return _MARK.sub("", description)


def revision(dashboard: Json) -> str:
    """A hash of the dashboard's content, ignoring the mark and what Grafana sets on save."""
    content = {k: v for k, v in dashboard.items() if k not in VOLATILE}
    content["description"] = _without_mark(str(content.get("description", "")))
    return hashlib.sha256(canonical(content).encode()).hexdigest()[:12]


def stamp(dashboard: Json, version: int | None = None) -> Json:
    """A copy of `dashboard` with the mark (rev, and `version` when given) in its description."""
    out = copy.deepcopy(dashboard)
    rev = revision(dashboard)
    text = _without_mark(str(out.get("description", "")))
    mark = f"[mcobs rev {rev}" + (f" v{version}" if version is not None else "") + "]"
    out["description"] = f"{text}\n\n{mark}" if text else mark
    return out


def read_stamp(dashboard: Json) -> Stamp | None:
    """The mark in a dashboard, or None when it has none (not written by mcobs, or edited away)."""
    found = _MARK.search(str(dashboard.get("description", "")))
    if found is None:
        return None
    version = found.group("version")
    return Stamp(found.group("rev"), int(version) if version is not None else None)
