"""Alertmanager webhook payloads (version 4) -> alert marks on scopes (pure).

A firing alert labelled `cluster` (and optionally `namespace` + `service`)
marks that scope: severities in `down_severities` take it down, any other
severity degrades it. A resolved alert removes its mark. Alerts without a
`cluster` label are ignored, and each reason is reported back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcobs.model import AlertMark, Scope, ServiceKey

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ZERO_TIME = "0001-01-01T00:00:00Z"
MAX_ALERTS = 1000


class PayloadError(ValueError):
    """The payload as a whole is not an Alertmanager v4 webhook; `problems` says why."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class AlertBatch:
    firing: tuple[AlertMark, ...]
    resolved: tuple[str, ...]
    """Fingerprints of alerts that resolved."""
    ignored: tuple[str, ...]
    """One reason per alert that was not used."""


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value or value.startswith(_ZERO_TIME[:10]):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _fingerprint(labels: Mapping[str, str]) -> str:
    canonical = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _scope(labels: Mapping[str, str]) -> tuple[Scope | None, str | None]:
    cluster = labels.get("cluster", "")
    if not cluster:
        return None, "no cluster label"
    if not _LABEL.fullmatch(cluster):
        return None, f"cluster label {cluster[:64]!r} is not a cluster name"
    namespace, service = labels.get("namespace"), labels.get("service")
    if bool(namespace) != bool(service):
        return Scope(cluster), None  # a namespace alone (or a service alone) scopes the cluster
    if namespace and service:
        return Scope(cluster, ServiceKey(namespace, service)), None
    return Scope(cluster), None


def parse_webhook(
    payload: Any, now: float, down_severities: frozenset[str] = frozenset({"critical"})
) -> AlertBatch:
    """Every alert of a payload, sorted into firing marks, resolutions and ignored ones."""
    if not isinstance(payload, dict):
        raise PayloadError(["body must be a JSON object"])
    problems = []
    if payload.get("version") != "4":
        problems.append(f'version must be "4", got {payload.get("version")!r}')
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        problems.append("alerts must be a list")
    elif len(alerts) > MAX_ALERTS:
        problems.append(f"at most {MAX_ALERTS} alerts per payload, got {len(alerts)}")
    if problems:
        raise PayloadError(problems)
    assert isinstance(alerts, list)
    firing: list[AlertMark] = []
    resolved: list[str] = []
    ignored: list[str] = []
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            ignored.append(f"{where}: not an alert object with labels")
            continue
        labels = {str(k): str(v) for k, v in alert["labels"].items()}
        name = labels.get("alertname", "")
        scope, why = _scope(labels)
        if scope is None:
            ignored.append(f"{where} {name}: {why}")
            continue
        fingerprint = str(alert.get("fingerprint") or _fingerprint(labels))[:64]
        ends_at = _time(alert.get("endsAt"))
        status = alert.get("status")
        if status == "resolved" or (ends_at is not None and ends_at <= now):
            resolved.append(fingerprint)
            continue
        if status != "firing":
            ignored.append(f"{where} {name}: status must be firing or resolved")
            continue
        severity = labels.get("severity", "")
        annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
        firing.append(
            AlertMark(
                fingerprint=fingerprint,
                scope=scope,
                name=name[:128],
                severity=severity[:32],
                down=severity in down_severities,
                starts_at=_time(alert.get("startsAt")) or now,
                ends_at=ends_at,
                summary=str((annotations or {}).get("summary", ""))[:256],
            )
        )
    return AlertBatch(tuple(firing), tuple(resolved), tuple(ignored))
