"""Legacy (unaggregated) API discovery documents for the simulated API server.

kubectl asks for aggregated discovery first and falls back to these documents
when the answer is plain `application/json`.
"""

from __future__ import annotations

from typing import Any

from mcobs.sim.render import Json

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-mcobs-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}

GROUP = "discovery.k8s.io"
GROUP_VERSION = f"{GROUP}/v1"
_VERBS = ["get", "list", "watch"]


def _resource(name: str, singular: str, kind: str, namespaced: bool, short: list[str]) -> Json:
    out: dict[str, Any] = {
        "name": name,
        "singularName": singular,
        "namespaced": namespaced,
        "kind": kind,
        "verbs": _VERBS,
    }
    if short:
        out["shortNames"] = short
    return out


def api_versions(server_address: str) -> Json:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def core_v1() -> Json:
    return {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            _resource("nodes", "node", "Node", False, ["no"]),
            _resource("services", "service", "Service", True, ["svc"]),
        ],
    }


def _group() -> Json:
    version = {"groupVersion": GROUP_VERSION, "version": "v1"}
    return {"name": GROUP, "versions": [version], "preferredVersion": version}


def api_groups() -> Json:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group()]}


def discovery_group() -> Json:
    return {"kind": "APIGroup", "apiVersion": "v1", **_group()}


def discovery_v1() -> Json:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [_resource("endpointslices", "endpointslice", "EndpointSlice", True, [])],
    }
