"""The status page's state: one JSON snapshot of clusters and services, rendered once per plan.

The snapshot reuses the API's shapes (`mcobs.api.render`): `clusters` are the
items of `GET /api/v1/clusters`, each with one more key, `answer_health` (the
cluster's health as answers use it: stale reports, drains and alerts applied);
`services` are the items of `GET /api/v1/services`, each with its `strategy`.

`StatusFrames` renders it at most once per plan object, whatever the number of
open pages: a stream asks for `current()` every tick and gets the cached bytes
back until the hub's plan object changes (every catalog change and every
re-plan makes a new one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcobs.answer import ZonePlan, cluster_health
from mcobs.api.app import HubView
from mcobs.api.render import cluster_json, health_json, service_json


def status_json(hub: HubView, event_types: Sequence[str] | None) -> dict[str, Any]:
    """Everything the page shows but the events; `event_types` None: no event log."""
    now = hub.now()
    snapshot = hub.snapshot
    plan = hub.plan
    clusters = []
    for report in sorted(snapshot.reports.values(), key=lambda r: r.cluster):
        item = cluster_json(report, now, hub.stale_after)
        health = cluster_health(snapshot, report.cluster, now, hub.stale_after)
        item["answer_health"] = health_json(health)
        clusters.append(item)
    return {
        "ready": hub.ready,
        "rendered_at": now,
        "catalog_version": snapshot.version,
        "zone": plan.view.origin,
        "stale_after": hub.stale_after,
        "clusters": clusters,
        "services": [{**service_json(p), "strategy": p.strategy} for p in plan.services.values()],
        "events": None if event_types is None else {"types": list(event_types)},
    }


@dataclass(frozen=True, slots=True)
class Frame:
    plan: ZonePlan
    """The plan this frame was rendered from (compared by identity)."""
    body: bytes
    """`status_json` as compact JSON."""

    def sse(self, now: float) -> bytes:
        """One server-sent event `status` whose data is the body plus `now` (the server clock)."""
        stamped = b'{"now":%s,%s' % (json.dumps(round(now, 3)).encode(), self.body[1:])
        return b"event: status\ndata: " + stamped + b"\n\n"


class StatusFrames:
    """The latest rendered snapshot, shared by every open page."""

    def __init__(self, hub: HubView, event_types: Sequence[str] | None) -> None:
        self._hub = hub
        self._event_types = tuple(event_types) if event_types is not None else None
        self._frame: Frame | None = None

    def current(self) -> Frame:
        plan = self._hub.plan
        frame = self._frame
        if frame is None or frame.plan is not plan:
            body = json.dumps(
                status_json(self._hub, self._event_types),
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
            frame = self._frame = Frame(plan, body)
        return frame
