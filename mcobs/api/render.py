"""Catalog values -> JSON-able dicts for the HTTP API (pure).

Nothing secret lives in these values (credentials stay in the collectors), and
only the fields listed here are ever rendered.
"""

from __future__ import annotations

from typing import Any

from mcobs.answer import ClusterChoice, ServicePlan
from mcobs.health import effective_health
from mcobs.model import ClusterReport, Health


def health_json(health: Health) -> dict[str, Any]:
    return {"state": health.state.value, "score": health.score, "reasons": list(health.reasons)}


def cluster_json(report: ClusterReport, now: float, stale_after: float) -> dict[str, Any]:
    probe = report.probe
    return {
        "name": report.cluster,
        "region": report.region,
        "labels": dict(report.labels),
        "weight": report.weight,
        "priority": report.priority,
        "health": health_json(effective_health(report, now, stale_after)),
        "reported_health": health_json(report.health),
        "observed_at": report.observed_at,
        "age_seconds": round(max(0.0, now - report.observed_at), 3),
        "api": {
            "reachable": probe.reachable,
            "latency_seconds": probe.latency_s,
            "readyz_ok": probe.readyz_ok,
            "nodes_ready": probe.nodes_ready,
            "nodes_total": probe.nodes_total,
            "error": probe.error,
        },
        "signals": [{"name": s.name, "value": s.value, "error": s.error} for s in report.signals],
        "services": len(report.services),
        "services_synced": report.services_synced,
    }


def choice_json(choice: ClusterChoice) -> dict[str, Any]:
    service = choice.service
    return {
        "cluster": choice.cluster,
        "region": choice.region,
        "in_answer": choice.in_answer,
        "reason": choice.reason,
        "rank": round(choice.rank, 4),
        "weight": choice.weight,
        "health": health_json(choice.health),
        "addresses": list(service.addresses),
        "hostnames": list(service.hostnames),
        "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in service.ports],
        "ready_endpoints": service.ready_endpoints,
        "total_endpoints": service.total_endpoints,
        "problems": list(service.problems),
    }


def service_json(plan: ServicePlan) -> dict[str, Any]:
    answering = plan.answering
    return {
        "namespace": plan.key.namespace,
        "name": plan.key.name,
        "dns_name": plan.name,
        "ttl": plan.ttl,
        "last_resort": plan.last_resort,
        "answer": list(dict.fromkeys(a for c in answering for a in c.service.addresses)),
        "clusters_in_answer": [c.cluster for c in answering],
        "clusters": [choice_json(c) for c in plan.choices],
        "problems": list(plan.problems),
    }
