"""The body each consumer gets for an event (pure).

`standard`: the event JSON itself (see `event`). `alertmanager`: an
Alertmanager webhook payload (version 4), so receivers written for
Alertmanager consume mcobs events unchanged. Each event maps to alerts:

| event                 | alert                  | severity | fires when    | resolves when    |
|-----------------------|------------------------|----------|---------------|------------------|
| cluster.state_changed | McobsClusterDown       | critical | to = down     | from = down      |
| cluster.state_changed | McobsClusterDegraded   | warning  | to = degraded | from = degraded  |
| service.failover      | McobsServiceFailover   | warning  | active        | not active       |
| service.last_resort   | McobsServiceLastResort | critical | active        | not active       |
| override.drain        | McobsClusterDrained    | info     | active        | not active       |

An alert keeps its labels (and so its fingerprint) between firing and
resolved, so a receiver pairs them. An event that maps to no alert (e.g. a
cluster going from unknown to healthy) has no Alertmanager body: it is not
sent to Alertmanager-format consumers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote

from mcobs.notify.event import Event, JsonValue, encode_event, format_time, parse_time

ZERO_TIME: Final = "0001-01-01T00:00:00Z"
"""What Alertmanager sends as `endsAt` of an alert that is still firing."""


class PayloadFormat(StrEnum):
    STANDARD = "standard"
    ALERTMANAGER = "alertmanager"


@dataclass(frozen=True, slots=True)
class Alert:
    status: str
    """`firing` or `resolved`."""
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str
    generator_url: str

    @property
    def fingerprint(self) -> str:
        """16 hex digits from the labels alone: equal for an alert's firing and resolved."""
        text = "\n".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _strings(value: JsonValue) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, Sequence) else []


def _text(value: JsonValue) -> str:
    return value if isinstance(value, str) else ""


def _since(event: Event) -> datetime:
    since = parse_time(event.data.get("since"))
    return since if since is not None else event.occurred_at


def _alert(
    event: Event,
    *,
    firing: bool,
    alertname: str,
    severity: str,
    scope: Mapping[str, str],
    summary: str,
    description: str,
    generator_url: str,
) -> Alert:
    labels = {"alertname": alertname, **scope, "severity": severity}
    annotations = {
        "summary": summary,
        "description": description,
        "mcobs_event_id": event.id,
        "mcobs_event_type": event.type,
    }
    if firing:
        starts_at, ends_at = event.timestamp, ZERO_TIME
    else:
        starts_at, ends_at = format_time(_since(event)), event.timestamp
    return Alert(
        "firing" if firing else "resolved",
        MappingProxyType(labels),
        MappingProxyType(annotations),
        starts_at,
        ends_at,
        generator_url,
    )


def _cluster_alerts(event: Event, external_url: str) -> list[Alert]:
    cluster = _text(event.data.get("cluster"))
    before, after = _text(event.data.get("from")), _text(event.data.get("to"))
    reasons = "; ".join(_strings(event.data.get("reasons"))) or f"state {before} -> {after}"
    url = f"{external_url}/api/v1/clusters" if external_url else ""
    alerts = []
    for state, alertname, severity in (
        ("down", "McobsClusterDown", "critical"),
        ("degraded", "McobsClusterDegraded", "warning"),
    ):
        if after == state:
            summary = f"Cluster {cluster} is {state}"
        elif before == state:
            summary = f"Cluster {cluster} is no longer {state} (now {after})"
        else:
            continue
        alerts.append(
            _alert(
                event,
                firing=after == state,
                alertname=alertname,
                severity=severity,
                scope={"cluster": cluster},
                summary=summary,
                description=reasons,
                generator_url=url,
            )
        )
    return alerts


def _service_url(external_url: str, namespace: str, service: str) -> str:
    if not external_url:
        return ""
    return f"{external_url}/api/v1/services/{quote(namespace, safe='')}/{quote(service, safe='')}"


def _failover_alerts(event: Event, external_url: str) -> list[Alert]:
    namespace, service = _text(event.data.get("namespace")), _text(event.data.get("service"))
    active = event.data.get("active") is True
    before = ", ".join(_strings(event.data.get("from"))) or "none"
    after = ", ".join(_strings(event.data.get("to"))) or "none"
    if active:
        summary = f"Service {namespace}/{service} failed over from {before} to {after}"
    else:
        summary = f"Service {namespace}/{service} is back on {after}"
    reasons = "; ".join(_strings(event.data.get("reasons"))) or summary
    return [
        _alert(
            event,
            firing=active,
            alertname="McobsServiceFailover",
            severity="warning",
            scope={"namespace": namespace, "service": service},
            summary=summary,
            description=reasons,
            generator_url=_service_url(external_url, namespace, service),
        )
    ]


def _last_resort_alerts(event: Event, external_url: str) -> list[Alert]:
    namespace, service = _text(event.data.get("namespace")), _text(event.data.get("service"))
    active = event.data.get("active") is True
    if active:
        summary = (
            f"Service {namespace}/{service}: no cluster can serve, "
            "answering with every cluster (last resort)"
        )
    else:
        summary = f"Service {namespace}/{service} is served normally again"
    reasons = "; ".join(_strings(event.data.get("reasons"))) or summary
    return [
        _alert(
            event,
            firing=active,
            alertname="McobsServiceLastResort",
            severity="critical",
            scope={"namespace": namespace, "service": service},
            summary=summary,
            description=reasons,
            generator_url=_service_url(external_url, namespace, service),
        )
    ]


def _drain_alerts(event: Event, external_url: str) -> list[Alert]:
    cluster = _text(event.data.get("cluster"))
    namespace, service = _text(event.data.get("namespace")), _text(event.data.get("service"))
    active = event.data.get("active") is True
    reason = _text(event.data.get("reason"))
    scope = {"cluster": cluster}
    what = f"Cluster {cluster}"
    url = f"{external_url}/api/v1/clusters" if external_url else ""
    if namespace and service:  # one service drained in one cluster
        scope |= {"namespace": namespace, "service": service}
        what = f"Service {namespace}/{service} in cluster {cluster}"
        url = _service_url(external_url, namespace, service)
    summary = f"{what} is drained out of every answer" if active else f"{what} is no longer drained"
    return [
        _alert(
            event,
            firing=active,
            alertname="McobsClusterDrained",
            severity="info",
            scope=scope,
            summary=summary,
            description=reason or summary,
            generator_url=url,
        )
    ]


_ALERTS: Final = {
    "cluster.state_changed": _cluster_alerts,
    "service.failover": _failover_alerts,
    "service.last_resort": _last_resort_alerts,
    "override.drain": _drain_alerts,
}


def alerts_for(event: Event, external_url: str = "") -> tuple[Alert, ...]:
    """The alerts an event fires or resolves (none for an unknown type)."""
    build = _ALERTS.get(event.type)
    return tuple(build(event, external_url.rstrip("/"))) if build else ()


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def alertmanager_payload(event: Event, receiver: str, external_url: str = "") -> dict[str, Any]:
    """The Alertmanager webhook body (version 4); {} when the event maps to no alert."""
    alerts = alerts_for(event, external_url)
    if not alerts:
        return {}
    common_labels = _common([a.labels for a in alerts])
    group_labels = {k: v for k, v in common_labels.items() if k not in ("alertname", "severity")}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [
            {
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": a.starts_at,
                "endsAt": a.ends_at,
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
    }


def render(
    payload_format: PayloadFormat, event: Event, *, receiver: str, external_url: str = ""
) -> bytes | None:
    """The request body for one consumer; None when this format has nothing to say."""
    if payload_format is PayloadFormat.STANDARD:
        return encode_event(event)
    payload = alertmanager_payload(event, receiver, external_url)
    if not payload:
        return None
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
