"""A kubeconfig for simulated clusters: one context per cluster, named after it."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mcobs.sim.cluster import SimCluster


def _cluster(cluster: SimCluster) -> dict[str, str]:
    entry = {"server": cluster.kube_url}
    if cluster.ca_pem is not None:
        entry["certificate-authority-data"] = base64.b64encode(cluster.ca_pem.encode()).decode()
    return entry


def kubeconfig(clusters: Sequence[SimCluster], *, namespace: str = "default") -> dict[str, Any]:
    """The kubeconfig document; the first cluster is the current context.

    Each HTTPS cluster comes with its own certificate as `certificate-authority-data`
    (over plain HTTP kubectl would send no token).
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": c.name, "cluster": _cluster(c)} for c in clusters],
        "users": [{"name": f"{c.name}-reader", "user": {"token": c.token}} for c in clusters],
        "contexts": [
            {
                "name": c.name,
                "context": {"cluster": c.name, "user": f"{c.name}-reader", "namespace": namespace},
            }
            for c in clusters
        ],
        "current-context": clusters[0].name if clusters else "",
    }


def write_kubeconfig(path: str | os.PathLike[str], clusters: Sequence[SimCluster]) -> Path:
    """Write the kubeconfig readable by its owner only (it holds tokens); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(clusters), sort_keys=False)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    target.chmod(0o600)
    return target
