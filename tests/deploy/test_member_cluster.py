"""Member-cluster access: read-only RBAC, and make-kubeconfig.sh against a simulated cluster.

The simulator serves no Secrets, so a stub `kubectl` first on PATH answers the
script's `kubectl get secret ... -o jsonpath=...` calls with the simulated
cluster's real token and CA (taken from the simulator's own kubeconfig) and
passes every other call to the real kubectl. The kubeconfig the script writes
is then used with the official `kubernetes` Python client and with mcobs' own
credential loader against the simulated API server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from mcobs.collect.credentials import load_credentials
from tests.deploy.support import MEMBER, ROOT, documents, kustomize, one, tool

SCRIPT = MEMBER / "make-kubeconfig.sh"

STUB = r"""#!/bin/sh
# A stand-in for kubectl: answers `get secret` from the environment, logs every
# call, and hands everything else to the real kubectl.
printf '%s\n' "$*" >> "$STUB_LOG"
case " $* " in
    *" get secret "*)
        case "$*" in
            *"{.type}"*) printf '%s' "$STUB_SECRET_TYPE" ;;
            *"{.data.token}"*) printf '%s' "$STUB_TOKEN_B64" ;;
            *"{.data.ca"*) printf '%s' "$STUB_CA_B64" ;;
            *) echo "stub kubectl: unexpected call: $*" >&2; exit 2 ;;
        esac
        exit 0 ;;
esac
exec "$REAL_KUBECTL" "$@"
"""


# -- the manifests -------------------------------------------------------------------------


def test_reader_can_only_read_what_the_collectors_read() -> None:
    docs = kustomize(MEMBER)
    role = one(docs, "ClusterRole", "mcobs-reader")
    granted: set[tuple[str, str]] = set()
    urls: set[str] = set()
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
        for group in rule.get("apiGroups", []):
            granted |= {(group, r) for r in rule["resources"]}
        urls |= set(rule.get("nonResourceURLs", []))
    assert granted == {("", "services"), ("", "nodes"), ("discovery.k8s.io", "endpointslices")}
    assert urls == {"/readyz", "/livez", "/version"}
    # Every API path the collectors request is granted.
    source = (ROOT / "mcobs" / "collect" / "cluster.py").read_text(encoding="utf-8")
    for path in re.findall(r'"(/api[s]?/[^"]+|/readyz|/livez)"', source):
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            assert ("", parts[-1]) in granted, path
        elif parts[0] == "apis":
            assert (parts[1], parts[-1]) in granted, path
        else:
            assert path in urls, path

    binding = one(docs, "ClusterRoleBinding", "mcobs-reader")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "mcobs-reader",
    }
    account = one(docs, "ServiceAccount", "mcobs-reader")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "mcobs-reader", "namespace": "mcobs"}
    ]
    secret = one(docs, "Secret", "mcobs-reader-token")
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "mcobs-reader"
    assert secret["metadata"]["namespace"] == account["metadata"]["namespace"] == "mcobs"
    assert "data" not in secret  # the token controller fills it in


def test_no_other_object_is_granted_anything() -> None:
    kinds = sorted(d["kind"] for p in MEMBER.glob("*.yaml") for d in documents(p))
    assert kinds.count("ClusterRole") == 1
    assert "Role" not in kinds and "RoleBinding" not in kinds


# -- the script --------------------------------------------------------------------------------


def test_script_passes_shellcheck() -> None:
    shellcheck = tool("shellcheck")
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    assert os.access(SCRIPT, os.X_OK)
    assert "set -euo pipefail" in SCRIPT.read_text(encoding="utf-8")


def names(services: list[kube_client.V1Service]) -> set[str]:
    out = set()
    for service in services:
        assert service.metadata is not None
        out.add(f"{service.metadata.namespace}/{service.metadata.name}")
    return out


@dataclass(frozen=True)
class Simulated:
    kubeconfig: Path
    context: str
    server: str
    token: str
    ca_b64: str
    services: frozenset[str]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    """`python -m mcobs.sim --clusters 1`: one simulated member cluster."""
    kubeconfig = tmp_path_factory.mktemp("sim") / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "mcobs.sim", "--clusters", "1", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "the simulator exited"
        fleet = json.loads(line)
        config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        (cluster,) = config["clusters"]
        (user,) = config["users"]
        api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=fleet["clusters"][0]["context"]
        )
        with api:
            services = kube_client.CoreV1Api(api).list_service_for_all_namespaces()
        yield Simulated(
            kubeconfig=kubeconfig,
            context=fleet["clusters"][0]["context"],
            server=cluster["cluster"]["server"],
            token=user["user"]["token"],
            ca_b64=cluster["cluster"]["certificate-authority-data"],
            services=frozenset(names(services.items)),
        )
    finally:
        process.terminate()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]


class Script:
    """Runs make-kubeconfig.sh with the stub kubectl first on PATH."""

    def __init__(self, simulated: Simulated, workdir: Path) -> None:
        self.simulated = simulated
        self.workdir = workdir
        bin_dir = workdir / "bin"
        bin_dir.mkdir()
        stub = bin_dir / "kubectl"
        stub.write_text(STUB, encoding="utf-8")
        stub.chmod(0o755)
        self.log = workdir / "kubectl.log"
        self.env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "KUBECONFIG": str(simulated.kubeconfig),  # the admin's kubeconfig
            "REAL_KUBECTL": tool("kubectl"),
            "STUB_LOG": str(self.log),
            "STUB_SECRET_TYPE": "kubernetes.io/service-account-token",
            "STUB_TOKEN_B64": base64.b64encode(simulated.token.encode()).decode(),
            "STUB_CA_B64": simulated.ca_b64,
        }

    def __call__(self, *args: str, **env: str) -> Run:
        self.log.write_text("", encoding="utf-8")
        result = subprocess.run(
            ["bash", str(SCRIPT), *args],
            env={**self.env, **env},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        calls = self.log.read_text(encoding="utf-8").splitlines()
        return Run(result.returncode, result.stdout, result.stderr, calls)


@pytest.fixture
def script(simulated: Simulated, tmp_path: Path) -> Script:
    return Script(simulated, tmp_path)


def read_as_mcobs(kubeconfig: Path, context: str) -> set[str]:
    """What mcobs' collectors read, through the official client with this kubeconfig entry."""
    api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), context=context
    )
    with api:
        core = kube_client.CoreV1Api(api)
        services = core.list_service_for_all_namespaces()
        slices = kube_client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces()
        nodes = core.list_node()
        # The health probe, as the collectors send it (a non-resource URL).
        method, url, headers, _, _ = api.param_serialize(
            "GET", "/readyz", auth_settings=["BearerToken"]
        )
        probe = api.call_api(method, url, header_params=headers)
        probe.read()
    assert slices.items and nodes.items and probe.status == 200
    return names(services.items)


def test_writes_a_kubeconfig_that_reads_the_cluster(
    script: Script, simulated: Simulated, tmp_path: Path
) -> None:
    output = tmp_path / "kubeconfig"
    run = script("--from-context", simulated.context, "--context", "eu-west", "-o", str(output))
    assert run.returncode == 0, run.stderr
    assert f"wrote {output}: context eu-west, server {simulated.server}" in run.stdout

    # The token reached the file, and nowhere else: not the output, not any argument.
    assert simulated.token in output.read_text(encoding="utf-8")
    for text in (run.stdout, run.stderr, *run.calls):
        assert simulated.token not in text
        assert script.env["STUB_TOKEN_B64"] not in text
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".mcobs-kubeconfig.*"))
    assert not list(tmp_path.glob("mcobs-kubeconfig.*"))  # the work directory is gone

    # It asked the source context for the right Secret and the server URL.
    secret_calls = [c for c in run.calls if " get secret " in f" {c} "]
    assert secret_calls
    for call in secret_calls:
        assert call.startswith(f"--context {simulated.context} --namespace mcobs get secret ")
        assert " mcobs-reader-token " in call

    assert read_as_mcobs(output, "eu-west") == simulated.services
    credentials = load_credentials(output, "eu-west", in_cluster=False)
    assert credentials.server == simulated.server
    assert credentials.headers() == {"Authorization": f"Bearer {simulated.token}"}


def test_merges_entries_and_replaces_one_of_the_same_name(
    script: Script, simulated: Simulated, tmp_path: Path
) -> None:
    output = tmp_path / "kubeconfig"
    assert script("--context", "eu-west", "-o", str(output)).returncode == 0
    run = script("--context", "us-east", "-o", str(output), "--verify")
    assert run.returncode == 0, run.stderr
    assert f"merged into {output}: context us-east" in run.stdout
    assert f"verified: /readyz ok, {len(simulated.services)} Services visible" in run.stdout
    config = yaml.safe_load(output.read_text(encoding="utf-8"))
    assert sorted(c["name"] for c in config["contexts"]) == ["eu-west", "us-east"]
    assert config["current-context"] == "eu-west"  # the file's own choice is kept
    assert read_as_mcobs(output, "eu-west") == read_as_mcobs(output, "us-east")

    # A re-run for eu-west (say, after the token was rotated) replaces its entry.
    stale = base64.b64encode(b"not-the-token").decode()
    assert script("--context", "eu-west", "-o", str(output), STUB_TOKEN_B64=stale).returncode == 0
    config = yaml.safe_load(output.read_text(encoding="utf-8"))
    assert len(config["users"]) == 2
    with pytest.raises(kube_client.ApiException) as refused:
        read_as_mcobs(output, "eu-west")
    assert refused.value.status == 401
    assert read_as_mcobs(output, "us-east") == simulated.services


def test_refuses_a_secret_without_a_token(script: Script, tmp_path: Path) -> None:
    output = tmp_path / "kubeconfig"
    run = script("--context", "eu-west", "-o", str(output), "--wait", "0", STUB_TOKEN_B64="")
    assert run.returncode == 1
    assert "Secret mcobs/mcobs-reader-token has no token or ca.crt after 0s" in run.stderr
    assert not output.exists()


def test_refuses_a_secret_of_another_type(script: Script, tmp_path: Path) -> None:
    output = tmp_path / "kubeconfig"
    run = script("-o", str(output), STUB_SECRET_TYPE="Opaque")
    assert run.returncode == 1
    assert "has type 'Opaque', not kubernetes.io/service-account-token" in run.stderr
    assert not output.exists()


def test_options_are_checked(script: Script) -> None:
    assert "Usage: make-kubeconfig.sh" in script("--help").stdout
    run = script("--context")
    assert run.returncode == 1 and "--context needs a value" in run.stderr
    run = script("--context", 'bad"name')
    assert run.returncode == 1 and "unsupported name" in run.stderr
    run = script("--frobnicate")
    assert run.returncode == 1 and "unknown argument: --frobnicate" in run.stderr
    assert not run.calls  # nothing was asked of the cluster
