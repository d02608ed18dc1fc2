"""What one cluster's Prometheus answered, and what mcobs answers: frozen values.

`classify` turns an HTTP status and body into an `Answer` or a `Failure`; the
failure keeps the Prometheus `errorType` (and HTTP status) it would give the
whole query if it failed it. Plain Python, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

Json: TypeAlias = Any

TIMEOUT = "timeout"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"
BAD_DATA = "bad_data"
_MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class Answer:
    cluster: str
    data: Json
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Failure:
    cluster: str
    reason: str
    """Why, for people: "timed out after 2s", "cannot connect: Connection refused"."""
    error_type: str = UNAVAILABLE
    status: int = 503


Outcome: TypeAlias = Answer | Failure


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and a body in Prometheus' JSON shape."""

    status: int
    body: Mapping[str, Json] = field(default_factory=dict)


def success(data: Json, warnings: tuple[str, ...] = (), infos: tuple[str, ...] = ()) -> Reply:
    body: dict[str, Json] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    if infos:
        body["infos"] = list(infos)
    return Reply(200, body)


def error(status: int, error_type: str, message: str) -> Reply:
    return Reply(status, {"status": "error", "errorType": error_type, "error": message})


def bad_data(message: str) -> Reply:
    return error(400, BAD_DATA, message)


def _strings(value: Json) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def classify(cluster: str, status: int, body: bytes) -> Outcome:
    """The answer of one cluster's Prometheus API, from its HTTP status and body."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict) or decoded.get("status") not in ("success", "error"):
        return Failure(cluster, f"HTTP {status}, not a Prometheus API answer")
    if decoded["status"] == "success" and status == 200 and "data" in decoded:
        return Answer(
            cluster,
            decoded["data"],
            _strings(decoded.get("warnings")),
            _strings(decoded.get("infos")),
        )
    error_type = str(decoded.get("errorType") or INTERNAL)
    message = _short(str(decoded.get("error") or f"HTTP {status}"))
    code = status if 400 <= status < 600 else 500
    return Failure(cluster, f"{error_type}: {message}", error_type, code)
