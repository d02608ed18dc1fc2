"""The hub's Kubernetes manifests, checked offline as `kubectl apply -k` would take them.

Every manifest is validated against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict), the kustomize builds are validated the same way,
and the pieces that must agree with each other do: the configuration in the
ConfigMap passes `mcobs check-config` with exactly the files the pod mounts,
the ports mcobs listens on are the ones the Services and probes use, and the
pods run unprivileged.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from mcobs.cli import build_parser
from tests.deploy.support import (
    BASE,
    KUBERNETES,
    KUSTOMIZATIONS,
    KUSTOMIZE_KINDS,
    MEMBER,
    OVERLAY,
    RUNBOOK,
    Doc,
    container,
    documents,
    kustomize,
    one,
    pod_spec,
    yaml_files,
)

VERSIONS = ("1.31.0", "1.37.0")
"""The oldest Kubernetes these manifests target and the newest schema at hand."""

CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})


# -- every file ------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    resources: frozenset[Path]
    configs: frozenset[Path]
    patches: frozenset[Path]
    kustomizations: frozenset[Path]


def inventory() -> Inventory:
    resources: set[Path] = set()
    configs: set[Path] = set()
    patches: set[Path] = set()
    kustomizations: set[Path] = set()
    for directory in KUSTOMIZATIONS:
        path = directory / "kustomization.yaml"
        kustomizations.add(path)
        spec = documents(path)[0]
        assert spec["kind"] in KUSTOMIZE_KINDS
        for item in spec.get("resources", []):
            if (directory / item).is_file():
                resources.add((directory / item).resolve())
        for generator in spec.get("configMapGenerator", []):
            for item in generator.get("files", []):
                configs.add((directory / item.split("=")[-1]).resolve())
        for patch in spec.get("patches", []):
            patches.add((directory / patch["path"]).resolve())
    return Inventory(
        frozenset(resources), frozenset(configs), frozenset(patches), frozenset(kustomizations)
    )


def manifest_files() -> list[Path]:
    return [p for p in yaml_files(KUBERNETES, MEMBER) if p.resolve() in inventory().resources]


def test_every_yaml_file_is_used_and_checked() -> None:
    known = inventory()
    used = known.resources | known.configs | known.patches | known.kustomizations
    stray = [str(p) for p in yaml_files(KUBERNETES, MEMBER) if p.resolve() not in used]
    assert not stray, f"YAML files no kustomization uses (so nothing checks them): {stray}"
    # Configuration files are mcobs settings, never Kubernetes objects; manifests always are.
    for path in known.configs:
        assert "apiVersion" not in documents(path)[0], path
    for path in known.resources:
        assert all("apiVersion" in d and "kind" in d for d in documents(path)), path


def validate(doc: Doc, version: str) -> None:
    """Strict validation against the OpenAPI schema of `version`: unknown fields fail."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "path", manifest_files(), ids=lambda p: str(p.relative_to(KUBERNETES.parent))
)
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    for doc in documents(path):
        validate(doc, version)


# -- builds ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builds() -> dict[Path, list[Doc]]:
    return {directory: kustomize(directory) for directory in (BASE, OVERLAY, MEMBER)}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("directory", [BASE, OVERLAY, MEMBER], ids=lambda p: p.name)
def test_build_is_valid_kubernetes(
    builds: dict[Path, list[Doc]], directory: Path, version: str
) -> None:
    docs = builds[directory]
    assert docs
    for doc in docs:
        validate(doc, version)


def test_overlay_deploys_into_its_namespace_from_the_registry(
    builds: dict[Path, list[Doc]],
) -> None:
    docs = builds[OVERLAY]
    assert one(docs, "Namespace")["metadata"]["name"] == "mcobs"
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == "mcobs", doc["metadata"]["name"]
    hub = container(one(docs, "Deployment", "mcobs"), "mcobs")
    assert hub["image"] == "registry.example.com/platform/mcobs:0.1.0"
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("StatefulSet") == 1  # the Redis component is in


# -- the configuration and the files the pod mounts -------------------------------------


@dataclass(frozen=True)
class Mounted:
    """What the hub container sees under its volume mounts."""

    files: dict[str, tuple[str, str, str]]
    """path -> (ConfigMap or Secret, object name, key)"""
    any_key_dirs: dict[str, str]
    """directory -> Secret name: a source without items puts each key of it there."""


def mounted(docs: list[Doc]) -> Mounted:
    deployment = one(docs, "Deployment", "mcobs")
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    files: dict[str, tuple[str, str, str]] = {}
    any_key: dict[str, str] = {}
    for mount in container(deployment, "mcobs")["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "projected" in volume:
            sources = volume["projected"]["sources"]
        elif "configMap" in volume or "secret" in volume:
            sources = [volume]
        else:
            continue
        for source in sources:
            kind = "ConfigMap" if "configMap" in source else "Secret"
            ref = source.get("configMap") or source.get("secret")
            name = ref.get("name") or ref.get("secretName")
            if "items" not in ref:
                assert kind == "Secret", "a ConfigMap's keys are all known: list them"
                any_key[mount["mountPath"]] = name
            for item in ref.get("items", []):
                path = str(PurePosixPath(mount["mountPath"]) / item["path"])
                assert path not in files, f"two sources write {path}"
                files[path] = (kind, name, item["key"])
    return Mounted(files, any_key)


def config_paths(data: dict[str, Any]) -> list[str]:
    """Every file the configuration names (read by check-config, serve or the collectors)."""
    paths = [c["kubeconfig"] for c in data["clusters"] if c.get("kubeconfig")]
    http = data.get("http") or {}
    paths += [http["token_file"]] if http.get("token_file") else []
    paths += [w["secret_file"] for w in data.get("webhooks", []) if w.get("secret_file")]
    paths += [data["grafana"]["token_file"]] if data.get("grafana") else []
    geo = data.get("geo") or {}
    paths += [geo["maxmind"]] if geo.get("maxmind") else []
    return paths


def hub_config(docs: list[Doc]) -> tuple[str, str]:
    """(the path `mcobs serve --config` reads, the ConfigMap's text behind it)."""
    deployment = one(docs, "Deployment", "mcobs")
    hub = container(deployment, "mcobs")
    assert hub["command"] == ["mcobs"]
    args = build_parser().parse_args(hub["args"])
    assert args.command == "serve"
    kind, name, key = mounted(docs).files[args.config]
    assert kind == "ConfigMap"
    configmap = one(docs, "ConfigMap", name)
    return args.config, configmap["data"][key]


def fake_content(path: str) -> str:
    import base64

    if path.endswith(".secret"):
        return "whsec_" + base64.b64encode(b"k" * 32).decode()
    if path.endswith("kubeconfig"):
        return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": []})
    return "t" * 40


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=lambda p: p.name)
def test_config_passes_check_config_with_the_mounted_files(
    builds: dict[Path, list[Doc]], directory: Path, tmp_path: Path
) -> None:
    docs = builds[directory]
    config_path, text = hub_config(docs)
    files = mounted(docs)
    data = yaml.safe_load(text)

    # Every file the configuration names is one the pod has.
    for path in config_paths(data):
        parent = str(PurePosixPath(path).parent)
        assert path in files.files or parent in files.any_key_dirs, (
            f"{path} is named in mcobs.yaml but no volume provides it"
        )

    # The pod's view, under tmp_path: check-config reads webhook secrets while validating.
    root = PurePosixPath(config_path).parent
    rewritten = text.replace(f"{root}/", f"{tmp_path}/")
    for path in [*files.files, *config_paths(data)]:
        local = tmp_path / PurePosixPath(path).relative_to(root)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(rewritten if path == config_path else fake_content(path))
    result = subprocess.run(
        [sys.executable, "-m", "mcobs", "check-config", str(tmp_path / "mcobs.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert ": ok (zone global.example.com." in result.stdout


def test_secrets_the_pod_needs_are_created_in_the_runbook(
    builds: dict[Path, list[Doc]],
) -> None:
    files = mounted(builds[OVERLAY])
    names = {name for kind, name, _ in files.files.values() if kind == "Secret"}
    names |= set(files.any_key_dirs.values())
    runbook = RUNBOOK.read_text(encoding="utf-8")
    for name in sorted(names):
        assert re.search(rf"kubectl .*create secret generic {name}\b", runbook), name


# -- ports, probes and Services -----------------------------------------------------------


def ports_by_name(spec: Doc) -> dict[str, tuple[int, str]]:
    return {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in spec["ports"]}


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=lambda p: p.name)
def test_services_probes_and_scrapes_reach_what_mcobs_listens_on(
    builds: dict[Path, list[Doc]], directory: Path
) -> None:
    docs = builds[directory]
    _, text = hub_config(docs)
    data = yaml.safe_load(text)
    deployment = one(docs, "Deployment", "mcobs")
    hub = container(deployment, "mcobs")
    ports = ports_by_name(hub)
    dns_port, http_port = data["dns"]["port"], data["http"]["port"]
    assert ports["dns-udp"] == (dns_port, "UDP")
    assert ports["dns-tcp"] == (dns_port, "TCP")
    assert ports["http"] == (http_port, "TCP")

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    services = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] != "redis"]
    assert {s["metadata"]["name"] for s in services} == {"mcobs", "mcobs-dns"}
    for service in services:
        assert service["spec"]["selector"].items() <= labels.items()
        published = set()
        for port in service["spec"]["ports"]:
            target = ports[port["targetPort"]]
            assert target[1] == port["protocol"], port
            published.add((port["port"], port["protocol"]))
        # Resolvers ask on 53, over UDP and TCP (truncated answers retry over TCP).
        assert {(53, "UDP"), (53, "TCP")} <= published
    api = one(docs, "Service", "mcobs")
    assert (8080, "TCP") in {(p["port"], p["protocol"]) for p in api["spec"]["ports"]}
    dns = one(docs, "Service", "mcobs-dns")
    assert dns["spec"]["type"] == "LoadBalancer"
    assert dns["spec"]["externalTrafficPolicy"] == "Local"  # keeps client addresses (geo)

    assert hub["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert hub["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert hub["startupProbe"]["httpGet"]["port"] == "http"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == http_port
    assert annotations["prometheus.io/path"] == "/metrics"


# -- how the pods run ------------------------------------------------------------------------


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    yield from (d for d in docs if d["kind"] in ("Deployment", "StatefulSet"))


def test_pods_run_unprivileged_with_bounded_resources(builds: dict[Path, list[Doc]]) -> None:
    found = list(workloads(builds[OVERLAY]))
    assert len(found) == 2  # the hub and the example Redis
    for workload in found:
        spec = pod_spec(workload)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] > 0
        assert pod["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for item in spec["containers"]:
            context = item["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "add" not in context["capabilities"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= item["resources"][bound].keys()
            # Every mount is read-only unless it is a scratch or data volume.
            writable = {m["name"] for m in item["volumeMounts"] if not m.get("readOnly")}
            assert writable <= {"tmp", "data"}, writable


def test_three_replicas_spread_and_a_disruption_budget(builds: dict[Path, list[Doc]]) -> None:
    docs = builds[OVERLAY]
    deployment = one(docs, "Deployment", "mcobs")
    assert deployment["spec"]["replicas"] == 3
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    spec = pod_spec(deployment)
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spec["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = one(docs, "PodDisruptionBudget", "mcobs")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    # A rollout never drops below three serving replicas.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_redis_component_is_where_the_config_points(builds: dict[Path, list[Doc]]) -> None:
    docs = builds[OVERLAY]
    _, text = hub_config(docs)
    url = yaml.safe_load(text)["redis"]["url"]
    match = re.match(r"redis://([a-z0-9.-]+):(\d+)/\d+$", url)
    assert match, url
    host, port = match.group(1), int(match.group(2))
    service = one(docs, "Service", host.split(".")[0])
    assert port in {p["port"] for p in service["spec"]["ports"]}
    redis = one(docs, "StatefulSet", "redis")
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= redis_labels.items()
    # Only the hub may connect to the password-less Redis.
    policy = one(docs, "NetworkPolicy", "redis")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= redis_labels.items()
    hub_labels = one(docs, "Deployment", "mcobs")["spec"]["template"]["metadata"]["labels"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"].items() <= hub_labels.items()
    assert rule["ports"][0]["port"] in ports_by_name(container(redis, "redis"))
    # Persistence: the catalog, decision log and outbox survive a Redis restart.
    args = container(redis, "redis")["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
