"""The OpenAPI 3.1 document of the HTTP API, and the route that serves it.

    GET /api/v1/openapi.json

The document is built here in Python (plain dicts, small helpers for the
shapes that repeat) and serialised once. It describes every route the hub
mounts: health and `/metrics`, the status page, the catalog API, drains and
alerts, the decision log, sharding and the webhook outbox. The Prometheus-compatible
query endpoints (`/api/v1/query`, ...) are described loosely: their parameters and
the Prometheus response envelope, not the shape of `data` (Prometheus documents
that). The demo-only simulator control routes (`/api/v1/sim/...`) are left out.

Response schemas are closed (`additionalProperties: false`) where mcobs builds
the object, so a field added to a response without adding it here fails the
schemathesis run in `tests/security/`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import metadata
from typing import Any, Final

from aiohttp import web

from mcobs.alerts import MAX_ALERTS
from mcobs.api.app import MAX_BODY_BYTES
from mcobs.api.control import MAX_DRAIN_SECONDS, MAX_REASON
from mcobs.decide.events import DEFAULT_LIMIT, MAX_LIMIT
from mcobs.decide.query import PAGE_PARAMS, STREAM_PARAMS
from mcobs.explain import QTYPES
from mcobs.model import HealthState
from mcobs.notify.api import DEFAULT_PAGE, MAX_PAGE
from mcobs.notify.event import EVENT_TYPES
from mcobs.notify.payloads import PayloadFormat

OPENAPI_PATH: Final = "/api/v1/openapi.json"
OPENAPI_VERSION: Final = "3.1.0"

Schema = dict[str, Any]

LABEL_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A cluster name or namespace: a DNS label (as `mcobs.api.control` checks it)."""

_REF = "#/components/schemas/"
_RESPONSES = "#/components/responses/"
_PARAMETERS = "#/components/parameters/"

READ: Final[list[dict[str, list[str]]]] = [{}, {"bearerAuth": []}]
"""Reads are open unless `http.protect_reads` is set; then they need the token too."""
WRITE: Final[list[dict[str, list[str]]]] = [{"bearerAuth": []}]


# -- schema helpers -----------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def obj(
    properties: Mapping[str, Schema],
    *,
    required: Sequence[str] | None = None,
    closed: bool = True,
    description: str | None = None,
) -> Schema:
    """An object; every property is required unless `required` says otherwise."""
    schema: Schema = {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties if required is None else required),
    }
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Schema) -> Schema:
    """`schema` or JSON null (OpenAPI 3.1 / JSON Schema 2020-12 style)."""
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema and "const" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def string_map(values: Schema | None = None) -> Schema:
    return {"type": "object", "additionalProperties": values or string()}


INTEGER: Final[Schema] = {"type": "integer"}
NUMBER: Final[Schema] = {"type": "number"}
BOOLEAN: Final[Schema] = {"type": "boolean"}
STRINGS: Final[Schema] = array(string())
SECONDS: Final[Schema] = {"type": "number", "description": "Unix seconds"}
TIMESTAMP: Final[Schema] = string(
    format="date-time", description="RFC 3339 in UTC, e.g. 2024-05-01T12:00:00.123456Z"
)


# -- components ---------------------------------------------------------------------------


def _health() -> Schema:
    return obj(
        {
            "state": string(enum=[s.value for s in HealthState]),
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "reasons": STRINGS,
        }
    )


def _cluster() -> Schema:
    return obj(
        {
            "name": string(),
            "region": string(),
            "labels": string_map(),
            "weight": NUMBER,
            "priority": INTEGER,
            "health": {**ref("Health"), "description": "now (a report gone stale is down)"},
            "reported_health": {**ref("Health"), "description": "as last reported"},
            "observed_at": SECONDS,
            "age_seconds": {"type": "number", "minimum": 0},
            "api": obj(
                {
                    "reachable": BOOLEAN,
                    "latency_seconds": nullable(NUMBER),
                    "readyz_ok": nullable(BOOLEAN),
                    "nodes_ready": INTEGER,
                    "nodes_total": INTEGER,
                    "error": nullable(string()),
                }
            ),
            "signals": array(
                obj({"name": string(), "value": nullable(NUMBER), "error": nullable(string())})
            ),
            "services": {"type": "integer", "minimum": 0, "description": "exported services"},
            "services_synced": BOOLEAN,
        }
    )


def _choice() -> Schema:
    return obj(
        {
            "cluster": string(),
            "region": string(),
            "in_answer": BOOLEAN,
            "reason": string(),
            "rank": NUMBER,
            "weight": NUMBER,
            "health": ref("Health"),
            "addresses": STRINGS,
            "hostnames": STRINGS,
            "ports": array(obj({"name": string(), "port": INTEGER, "protocol": string()})),
            "ready_endpoints": INTEGER,
            "total_endpoints": INTEGER,
            "problems": STRINGS,
        },
        description="one cluster's part in a service's answers, and why",
    )


def _service() -> Schema:
    return obj(
        {
            "namespace": string(),
            "name": string(),
            "dns_name": string(description="the global name, e.g. web.default.global.example.com."),
            "ttl": INTEGER,
            "last_resort": BOOLEAN,
            "answer": {**STRINGS, "description": "addresses DNS answers, best first"},
            "clusters_in_answer": STRINGS,
            "clusters": array(ref("ClusterChoice")),
            "problems": STRINGS,
        }
    )


def _resolution() -> Schema:
    return obj(
        {
            "name": string(),
            "type": string(enum=list(QTYPES)),
            "client": nullable(string()),
            "client_region": nullable(string()),
            "rcode": string(enum=["NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL"]),
            "answer": STRINGS,
            "first_answer_shares": array(
                obj({"record": string(), "share": {"type": "number", "minimum": 0, "maximum": 1}})
            ),
            "service": nullable(
                obj(
                    {
                        "namespace": string(),
                        "name": string(),
                        "strategy": string(),
                        "last_resort": BOOLEAN,
                        "clusters": array(
                            obj({"cluster": string(), "in_answer": BOOLEAN, "reason": string()})
                        ),
                    }
                )
            ),
        }
    )


def _drain_request() -> Schema:
    schema = obj(
        {
            "cluster": string(pattern=LABEL_PATTERN, description="the cluster to drain"),
            "service": nullable(
                string(
                    pattern=LABEL_PATTERN[:-1] + "/" + LABEL_PATTERN[1:],
                    description="namespace/name: drain one service only (default: all)",
                )
            ),
            "reason": string(
                minLength=1, maxLength=MAX_REASON, pattern=r"\S", description="why (required)"
            ),
            "expires_in": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_DRAIN_SECONDS,
                "description": "seconds until the drain ends by itself (default: never)",
            },
            "by": string(maxLength=128, description="who drained it"),
        },
        required=["cluster", "reason"],
        description="Every problem of a body is reported at once; an invalid body changes nothing.",
    )
    schema["examples"] = [
        {"cluster": "eu-west", "reason": "kernel upgrade", "expires_in": 3600, "by": "alice"},
        {"cluster": "us-east", "service": "default/web", "reason": "bad rollout"},
    ]
    return schema


def _drain() -> Schema:
    return obj(
        {
            "scope": string(description="cluster or cluster/namespace/name"),
            "cluster": string(),
            "service": nullable(string()),
            "reason": string(),
            "by": string(),
            "created_at": SECONDS,
            "expires_at": nullable(SECONDS),
        }
    )


def _drain_created() -> Schema:
    schema = _drain()
    schema["properties"]["warnings"] = STRINGS
    return schema


def _alertmanager_payload() -> Schema:
    alert = obj(
        {
            "status": string(enum=["firing", "resolved"]),
            "labels": {
                **string_map(),
                "description": "`cluster` picks the cluster; `namespace` and `service` "
                "together pick one service; `severity` in alerts.down_severities takes the "
                "scope down, any other degrades it",
            },
            "annotations": string_map(),
            "startsAt": string(),
            "endsAt": string(),
            "generatorURL": string(),
            "fingerprint": string(),
        },
        required=["status", "labels"],
        closed=False,
    )
    schema = obj(
        {
            "version": {"const": "4"},
            "groupKey": string(),
            "truncatedAlerts": INTEGER,
            "status": string(enum=["firing", "resolved"]),
            "receiver": string(),
            "groupLabels": string_map(),
            "commonLabels": string_map(),
            "commonAnnotations": string_map(),
            "externalURL": string(),
            "alerts": array(alert, maxItems=MAX_ALERTS),
        },
        required=["version", "alerts"],
        closed=False,
        description="An Alertmanager webhook payload, version 4 (webhook_config receiver).",
    )
    schema["examples"] = [
        {
            "version": "4",
            "status": "firing",
            "receiver": "mcobs",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "NodeDown",
                        "cluster": "eu-west",
                        "severity": "critical",
                    },
                    "annotations": {"summary": "2 of 3 nodes are down"},
                    "startsAt": "2024-05-01T12:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                }
            ],
        }
    ]
    return schema


def _alert() -> Schema:
    return obj(
        {
            "fingerprint": string(),
            "scope": string(),
            "name": string(),
            "severity": string(),
            "effect": string(enum=["down", "degraded"]),
            "starts_at": SECONDS,
            "ends_at": nullable(SECONDS),
            "summary": string(),
        }
    )


_KINDS: Final[Mapping[str, Schema]] = {
    "str": string(),
    "str?": nullable(string()),
    "bool": BOOLEAN,
    "str[]": STRINGS,
}


def _event() -> Schema:
    """One variant per known event type, from the registry in `mcobs.notify.event`."""
    variants = []
    for event_type in EVENT_TYPES.values():
        data = obj(
            {f.name: _KINDS[f.kind] for f in event_type.fields},
            required=[f.name for f in event_type.fields if f.required],
            closed=False,
        )
        variants.append(
            obj(
                {
                    "id": string(pattern=r"^evt_[0-9A-HJKMNP-TV-Z]{26}$"),
                    "type": {"const": event_type.name},
                    "timestamp": TIMESTAMP,
                    "data": data,
                },
                description=event_type.description,
            )
        )
    return {"oneOf": variants}


def _shard() -> Schema:
    seconds = {"type": "number", "minimum": 0}
    return obj(
        {
            "replica": string(
                description="this replica's id (its decision lease holder's when not sharded)"
            ),
            "sharded": BOOLEAN,
            "members": {**STRINGS, "description": "the live replicas it last saw, sorted"},
            "clusters": {**STRINGS, "description": "the clusters it collects now, sorted"},
            "waiting_for": {
                **STRINGS,
                "description": "clusters it should collect that another replica still holds",
            },
            "configured_clusters": {"type": "integer", "minimum": 0},
            "lease_ttl_seconds": nullable(seconds),
            "renewal_age_seconds": nullable(
                {**seconds, "description": "since its last successful claim; null before one"}
            ),
        },
        description="This replica's share of collection. Without sharding it collects every "
        "configured cluster and is its own only member.",
    )


def _consumer() -> Schema:
    return obj(
        {
            "name": string(),
            "scheme": string(enum=["http", "https"]),
            "host": string(description="the target's host only (its URL may hold a token)"),
            "events": STRINGS,
            "format": string(enum=[f.value for f in PayloadFormat]),
            "timeout": NUMBER,
            "max_attempts": nullable(INTEGER),
            "max_age": NUMBER,
            "deny_private": BOOLEAN,
            "pending": nullable(INTEGER),
            "attempts": string_map(INTEGER),
            "failures": string_map(INTEGER),
        }
    )


def _dead_letter() -> Schema:
    return obj(
        {
            "id": string(),
            "consumer": string(),
            "event": ref("Event"),
            "attempts": INTEGER,
            "queued_at": nullable(TIMESTAMP),
            "last_attempt_at": nullable(TIMESTAMP),
            "last_result": nullable(string()),
            "last_status": nullable(INTEGER),
            "dead_at": nullable(TIMESTAMP),
            "reason": nullable(string()),
        }
    )


def _prometheus_response() -> Schema:
    return obj(
        {
            "status": string(enum=["success", "error"]),
            "data": {"description": "as Prometheus answers; series carry a `cluster` label"},
            "errorType": string(),
            "error": string(),
            "warnings": STRINGS,
            "infos": STRINGS,
        },
        required=["status"],
        closed=False,
        description="The Prometheus HTTP API envelope "
        "(https://prometheus.io/docs/prometheus/latest/querying/api/).",
    )


def _schemas() -> dict[str, Schema]:
    return {
        "Error": obj(
            {"error": string(), "problems": STRINGS},
            required=["error"],
            description="Every API error. `problems` lists every reason when a request was "
            "invalid.",
        ),
        "Status": obj({"status": string()}),
        "Health": _health(),
        "Cluster": _cluster(),
        "ClusterList": obj({"catalog_version": INTEGER, "clusters": array(ref("Cluster"))}),
        "ClusterChoice": _choice(),
        "Service": _service(),
        "ServiceList": obj(
            {"catalog_version": INTEGER, "zone": string(), "services": array(ref("Service"))}
        ),
        "Resolution": _resolution(),
        "DrainRequest": _drain_request(),
        "Drain": _drain(),
        "DrainCreated": _drain_created(),
        "DrainList": obj({"drains": array(ref("Drain"))}),
        "Undrained": obj({"undrained": string()}),
        "AlertmanagerPayload": _alertmanager_payload(),
        "AlertsReceived": obj(
            {
                "firing": {**STRINGS, "description": "scope: alertname, per firing alert"},
                "resolved": {"type": "integer", "minimum": 0},
                "ignored": {**STRINGS, "description": "one reason per alert not used"},
            }
        ),
        "Alert": _alert(),
        "AlertList": obj({"alerts": array(ref("Alert"))}),
        "Event": _event(),
        "EventPage": obj(
            {
                "events": array(ref("Event")),
                "next_cursor": nullable(
                    string(description="pass as `cursor` for older events; null at the end")
                ),
            }
        ),
        "Leader": obj(
            {
                "leader": nullable(obj({"holder": string(), "token": INTEGER, "since": TIMESTAMP})),
                "replica": obj({"holder": string(), "is_leader": BOOLEAN}),
            }
        ),
        "Shard": _shard(),
        "Consumer": _consumer(),
        "Webhooks": obj(
            {
                "consumers": array(ref("Consumer")),
                "dead_letters": nullable(INTEGER),
                "buffered_events": INTEGER,
                "events": string_map(INTEGER),
                "store_error": nullable(string()),
            }
        ),
        "DeadLetter": _dead_letter(),
        "DeadLetterPage": obj(
            {
                "total": INTEGER,
                "offset": INTEGER,
                "limit": INTEGER,
                "items": array(ref("DeadLetter")),
            }
        ),
        "Requeued": obj(
            {"id": string(), "status": {"const": "queued"}, "queued_at": nullable(TIMESTAMP)}
        ),
        "PrometheusResponse": _prometheus_response(),
    }


def _json_response(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json_response(description, ref("Error"))


def _responses() -> dict[str, Any]:
    unauthorized = _error(
        "The bearer token is missing or wrong (mutating calls always; reads too when "
        "`http.protect_reads` is set)."
    )
    unauthorized["headers"] = {
        "WWW-Authenticate": {"schema": string(const='Bearer realm="mcobs"'), "required": True}
    }
    return {
        "BadRequest": _error("The request is invalid; `problems` names every reason."),
        "Unauthorized": unauthorized,
        "Forbidden": _error("Mutating calls are disabled: the hub has no API token."),
        "NotFound": _error("No such object."),
        "TooLarge": _error(f"The body is larger than {MAX_BODY_BYTES} bytes; nothing changed."),
        "Unavailable": _error("A store (catalog, event log, outbox) is unavailable; try again."),
    }


def _parameters() -> dict[str, Any]:
    def path(name: str, description: str, example: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": string(minLength=1),
            "example": example,
        }

    return {
        "namespace": path("namespace", "a Kubernetes namespace", "default"),
        "name": path("name", "a Service name", "web"),
        "cluster": path("cluster", "a cluster name", "eu-west"),
    }


# -- operations ---------------------------------------------------------------------------


def _op(
    summary: str,
    responses: Mapping[str, Any],
    *,
    tag: str,
    security: list[dict[str, list[str]]] | None = None,
    parameters: Sequence[Mapping[str, Any]] = (),
    body: Schema | None = None,
    description: str | None = None,
    operation_id: str,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    all_responses = dict(responses)
    if security is not None:
        operation["security"] = security
        all_responses.setdefault("401", {"$ref": _RESPONSES + "Unauthorized"})
        if security is WRITE:
            all_responses.setdefault("403", {"$ref": _RESPONSES + "Forbidden"})
        if body is not None:
            all_responses.setdefault("413", {"$ref": _RESPONSES + "TooLarge"})
    else:
        operation["security"] = []
    operation["responses"] = all_responses
    return operation


def _query(name: str, schema: Schema, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _use(name: str) -> dict[str, str]:
    return {"$ref": _PARAMETERS + name}


def _ok(schema_name: str, description: str = "OK") -> dict[str, Any]:
    return _json_response(description, ref(schema_name))


def _r(name: str) -> dict[str, str]:
    return {"$ref": _RESPONSES + name}


def _health_paths() -> dict[str, Any]:
    return {
        "/healthz": {
            "get": _op(
                "Liveness: the process answers",
                {"200": _json_response("alive", obj({"status": {"const": "ok"}}))},
                tag="health",
                operation_id="healthz",
            )
        },
        "/readyz": {
            "get": _op(
                "Readiness: the first catalog snapshot is loaded",
                {
                    "200": _json_response("ready", obj({"status": {"const": "ready"}})),
                    "503": _json_response("not ready yet", ref("Status")),
                },
                tag="health",
                operation_id="readyz",
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (mcobs_*)",
                {
                    "200": {
                        "description": "Prometheus text format, or OpenMetrics when the "
                        "Accept header asks for it",
                        "content": {
                            "text/plain": {"schema": string()},
                            "application/openmetrics-text": {"schema": string()},
                        },
                    }
                },
                tag="health",
                operation_id="metrics",
            )
        },
        OPENAPI_PATH: {
            "get": _op(
                "This document",
                {"200": _json_response("the OpenAPI document", {"type": "object"})},
                tag="health",
                security=READ,
                operation_id="openapi",
            )
        },
    }


def _status_paths() -> dict[str, Any]:
    """The status page (`mcobs.status`): HTML, its assets and its live stream."""
    return {
        "/": {
            "get": _op(
                "The live status page (HTML; no external assets)",
                {
                    "200": {
                        "description": "the page",
                        "content": {"text/html": {"schema": string()}},
                    }
                },
                tag="status",
                operation_id="statusPage",
            )
        },
        "/status/{name}": {
            "get": _op(
                "An asset of the status page",
                {
                    "200": {
                        "description": "the asset; cached for good when `v` is its version",
                        "content": {
                            "text/javascript": {"schema": string()},
                            "text/css": {"schema": string()},
                            "image/svg+xml": {"schema": string()},
                        },
                    },
                    "404": {
                        "description": "no such asset",
                        "content": {"text/plain": {"schema": string()}},
                    },
                },
                tag="status",
                parameters=[
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": string(minLength=1),
                        "example": "app.js",
                    },
                    _query("v", string(), "the asset's content hash, as the page links it"),
                ],
                operation_id="statusAsset",
            )
        },
        "/api/v1/status/stream": {
            "get": _op(
                "The status page's data, live, as server-sent events",
                {
                    "200": {
                        "description": "`status` events: clusters and services as "
                        "`/api/v1/clusters` and `/api/v1/services` show them",
                        "content": {"text/event-stream": {"schema": string()}},
                    }
                },
                tag="status",
                security=READ,
                operation_id="statusStream",
            )
        },
    }


def _catalog_paths() -> dict[str, Any]:
    return {
        "/api/v1/clusters": {
            "get": _op(
                "Every cluster: health now, its reasons, the API probe and signals",
                {"200": _ok("ClusterList")},
                tag="catalog",
                security=READ,
                operation_id="listClusters",
            )
        },
        "/api/v1/services": {
            "get": _op(
                "Every exported service and which clusters answer for it",
                {"200": _ok("ServiceList")},
                tag="catalog",
                security=READ,
                operation_id="listServices",
            )
        },
        "/api/v1/services/{namespace}/{name}": {
            "get": _op(
                "One exported service: each cluster's part in its answers, and why",
                {"200": _ok("Service"), "404": _r("NotFound")},
                tag="catalog",
                security=READ,
                parameters=[_use("namespace"), _use("name")],
                operation_id="getService",
            )
        },
        "/api/v1/resolve": {
            "get": _op(
                "What DNS would answer a client, and why",
                {"200": _ok("Resolution"), "400": _r("BadRequest")},
                tag="catalog",
                security=READ,
                parameters=[
                    _query(
                        "name",
                        string(minLength=1, maxLength=253),
                        "the name asked",
                        required=True,
                        example="web.default.global.example.com",
                    ),
                    _query(
                        "type",
                        string(enum=list(QTYPES), default="A"),
                        "the query type (case does not matter)",
                    ),
                    _query(
                        "client",
                        {"anyOf": [string(format="ipv4"), string(format="ipv6")]},
                        "the client's address, for geo answers",
                    ),
                ],
                operation_id="resolve",
            )
        },
    }


def _control_paths() -> dict[str, Any]:
    undrain = {"200": _ok("Undrained"), "400": _r("BadRequest"), "404": _r("NotFound")}
    return {
        "/api/v1/drains": {
            "get": _op(
                "Active drains",
                {"200": _ok("DrainList")},
                tag="control",
                security=READ,
                operation_id="listDrains",
            ),
            "post": _op(
                "Drain a cluster (or one service in it) out of every answer",
                {
                    "201": _ok("DrainCreated", "drained"),
                    "400": _r("BadRequest"),
                    "503": _r("Unavailable"),
                },
                tag="control",
                security=WRITE,
                body=ref("DrainRequest"),
                operation_id="addDrain",
            ),
        },
        "/api/v1/drains/{cluster}": {
            "delete": _op(
                "Undrain a cluster",
                {**undrain, "503": _r("Unavailable")},
                tag="control",
                security=WRITE,
                parameters=[_use("cluster")],
                operation_id="removeClusterDrain",
            )
        },
        "/api/v1/drains/{cluster}/{namespace}/{name}": {
            "delete": _op(
                "Undrain one service in a cluster",
                {**undrain, "503": _r("Unavailable")},
                tag="control",
                security=WRITE,
                parameters=[_use("cluster"), _use("namespace"), _use("name")],
                operation_id="removeServiceDrain",
            )
        },
        "/api/v1/alerts": {
            "get": _op(
                "Active alert marks",
                {"200": _ok("AlertList")},
                tag="control",
                security=READ,
                operation_id="listAlerts",
            ),
            "post": _op(
                "Alertmanager webhook receiver",
                {
                    "200": _ok("AlertsReceived", "every alert sorted: firing, resolved, ignored"),
                    "400": _r("BadRequest"),
                    "503": _r("Unavailable"),
                },
                tag="control",
                security=WRITE,
                body=ref("AlertmanagerPayload"),
                operation_id="receiveAlerts",
            ),
        },
    }


def _event_parameters(names: Sequence[str]) -> list[dict[str, Any]]:
    known = {
        "type": _query(
            "type",
            string(),
            "event types, comma-separated or repeated: " + ", ".join(EVENT_TYPES),
            example="cluster.state_changed,service.failover",
        ),
        "cluster": _query("cluster", string(), "only events about this cluster", example="eu-west"),
        "service": _query(
            "service",
            string(),
            "only events about this service (namespace/name)",
            example="default/web",
        ),
        "since": _query("since", string(), "RFC 3339 with a zone, or Unix seconds"),
        "until": _query("until", string(), "RFC 3339 with a zone, or Unix seconds"),
        "limit": _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "events per page",
        ),
        "cursor": _query("cursor", string(), "the next_cursor of the page before"),
        "last_event_id": _query(
            "last_event_id", string(), "resume after this event (like the Last-Event-ID header)"
        ),
    }
    return [known[name] for name in names]


def _decide_paths() -> dict[str, Any]:
    invalid = _json_response("invalid query; `problems` names every reason", ref("Error"))
    return {
        "/api/v1/events": {
            "get": _op(
                "The decision log, newest first, a page at a time",
                {"200": _ok("EventPage"), "400": invalid, "503": _r("Unavailable")},
                tag="events",
                security=READ,
                parameters=_event_parameters(PAGE_PARAMS),
                description="Unknown parameters are refused (400).",
                operation_id="listEvents",
            )
        },
        "/api/v1/events/stream": {
            "get": _op(
                "The decision log live, as server-sent events",
                {
                    "200": {
                        "description": "`id` is the event id, `event` its type, `data` the "
                        "event JSON; comments keep the stream alive",
                        "content": {"text/event-stream": {"schema": string()}},
                    },
                    "400": invalid,
                    "503": _r("Unavailable"),
                },
                tag="events",
                security=READ,
                parameters=[
                    *_event_parameters(STREAM_PARAMS),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "description": "resume after this event",
                        "schema": string(),
                    },
                ],
                operation_id="streamEvents",
            )
        },
        "/api/v1/leader": {
            "get": _op(
                "Which replica holds the decision lease",
                {"200": _ok("Leader"), "503": _r("Unavailable")},
                tag="events",
                security=READ,
                operation_id="leader",
            )
        },
    }


def _shard_paths() -> dict[str, Any]:
    return {
        "/api/v1/shard": {
            "get": _op(
                "Which clusters this replica collects, and the replicas it shares them with",
                {"200": _ok("Shard")},
                tag="shard",
                security=READ,
                operation_id="shard",
            )
        }
    }


def _webhook_paths() -> dict[str, Any]:
    return {
        "/api/v1/webhooks": {
            "get": _op(
                "Webhook consumers (host only, never the URL or secret), counters, queue",
                {"200": _ok("Webhooks")},
                tag="webhooks",
                security=READ,
                operation_id="webhooks",
            )
        },
        "/api/v1/webhooks/dead-letters": {
            "get": _op(
                "Dead letters, newest first",
                {"200": _ok("DeadLetterPage"), "400": _r("BadRequest"), "503": _r("Unavailable")},
                tag="webhooks",
                security=READ,
                parameters=[
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0},
                        "skip this many",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 0, "maximum": MAX_PAGE},
                        f"at most this many (default {DEFAULT_PAGE})",
                    ),
                ],
                operation_id="deadLetters",
            )
        },
        "/api/v1/webhooks/dead-letters/{id}/retry": {
            "post": _op(
                "Queue a dead letter again, due now",
                {
                    "202": _ok("Requeued", "queued"),
                    "404": _r("NotFound"),
                    "409": _error("Its consumer is no longer configured."),
                    "503": _r("Unavailable"),
                },
                tag="webhooks",
                security=WRITE,
                parameters=[
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "a dead letter's id",
                        "schema": string(minLength=1),
                    }
                ],
                operation_id="retryDeadLetter",
            )
        },
    }


_PROMETHEUS_EXAMPLES: Final[Mapping[str, Any]] = {
    "query": "sum by (cluster) (up)",
    "match[]": ["up"],
    "step": "15s",
    "metric": "up",
}

_PROMETHEUS_PARAMS: Final[Mapping[str, tuple[str, ...]]] = {
    "/api/v1/query": ("query", "time", "timeout", "lookback_delta", "partial_response"),
    "/api/v1/query_range": (
        "query",
        "start",
        "end",
        "step",
        "timeout",
        "lookback_delta",
        "partial_response",
    ),
    "/api/v1/series": ("match[]", "start", "end", "limit", "partial_response"),
    "/api/v1/labels": ("match[]", "start", "end", "limit", "partial_response"),
    "/api/v1/label/{name}/values": ("match[]", "start", "end", "limit", "partial_response"),
    "/api/v1/metadata": ("metric", "limit", "limit_per_metric", "partial_response"),
    "/api/v1/query_exemplars": ("query", "start", "end"),
    "/api/v1/status/buildinfo": (),
}


def _prometheus_paths() -> dict[str, Any]:
    """Loosely: parameters as Prometheus takes them, the envelope, not the data."""
    paths: dict[str, Any] = {}
    for path, names in _PROMETHEUS_PARAMS.items():
        parameters: list[dict[str, Any]] = [
            _query(
                name,
                array(string()) if name.endswith("[]") else string(),
                "as the Prometheus HTTP API takes it",
                **({"style": "form", "explode": True} if name.endswith("[]") else {}),
                **({"example": _PROMETHEUS_EXAMPLES[name]} if name in _PROMETHEUS_EXAMPLES else {}),
            )
            for name in names
        ]
        if "{name}" in path:
            parameters.insert(
                0,
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "a label name",
                    "schema": string(minLength=1),
                    "example": "job",
                },
            )
        responses = {
            "200": _ok("PrometheusResponse", "success (warnings name clusters that failed)"),
            "400": _ok("PrometheusResponse", "bad_data"),
            "422": _ok("PrometheusResponse", "execution error in a cluster"),
            "503": _ok("PrometheusResponse", "timeout, or no cluster could answer"),
        }
        paths[path] = {
            "get": _op(
                "Prometheus-compatible, fanned out to every cluster",
                responses,
                tag="prometheus",
                security=READ,
                parameters=parameters,
                description="Described loosely: see the Prometheus HTTP API. Where Prometheus "
                "takes POST with a form body, so does mcobs (a read: no token needed).",
                operation_id="prometheus" + path.removeprefix("/api/v1").replace("/", "_"),
            )
        }
    return paths


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the hub's HTTP API (a fresh copy)."""
    return json.loads(_encoded())  # type: ignore[no-any-return]


def _version() -> str:
    try:
        return metadata.version("mcobs")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


@cache
def _encoded() -> bytes:
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "mcobs HTTP API",
            "version": _version(),
            "description": "The hub's health, catalog, control, decision-log and webhook API. "
            'JSON in and out; errors are `{"error": ..., "problems": [...]}`. Mutating '
            "calls need `Authorization: Bearer <token>`; reads too when `http.protect_reads` "
            f"is set. Request bodies are limited to {MAX_BODY_BYTES} bytes. No CORS headers "
            "are sent.",
        },
        "tags": [
            {"name": "health"},
            {"name": "status", "description": "the status page"},
            {"name": "catalog"},
            {"name": "control", "description": "drains by people, alerts from Alertmanager"},
            {"name": "events", "description": "the decision log and the leader"},
            {"name": "shard", "description": "sharded collection over replicas"},
            {"name": "webhooks", "description": "the webhook outbox"},
            {"name": "prometheus", "description": "the global PromQL query (loosely)"},
        ],
        "paths": {
            **_health_paths(),
            **_status_paths(),
            **_catalog_paths(),
            **_control_paths(),
            **_decide_paths(),
            **_shard_paths(),
            **_webhook_paths(),
            **_prometheus_paths(),
        },
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "parameters": _parameters(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the API token (http.token_file or MCOBS_API_TOKEN)",
                }
            },
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def openapi_routes() -> list[web.RouteDef]:
    """`GET /api/v1/openapi.json`: the document, serialised once."""
    body = _encoded()

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return [web.get(OPENAPI_PATH, openapi)]
