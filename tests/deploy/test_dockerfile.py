"""The container image recipe, checked without a Docker engine.

What is checked: the Dockerfile as parsed by Docker's own parser (the
`dockerfile` package wraps moby/buildkit's Go parser): stages, pinned base
image, non-root numeric user, entry point and command, no remote ADD, no
secret-looking build arguments; hadolint's lint; the build context the
`.dockerignore` leaves (emulated), and that the builder stage's wheel builds
from exactly that context with the `mcobs` console script. What is not: the
image itself (no engine here), the base image's existence in a registry, and
installing the wheel's dependencies from it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import BASE, ROOT, container, kustomize, one, pod_spec, venv_tool

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def commands() -> list[Any]:
    """The instructions, as Docker's own (Go) parser reads them."""
    dockerfile = pytest.importorskip("dockerfile")
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def stages() -> list[list[Any]]:
    """Instructions per stage (a stage starts at FROM)."""
    found: list[list[Any]] = []
    for command in commands():
        if command.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(command)
    return found


def build_args() -> dict[str, str]:
    out = {}
    for command in commands():
        if command.cmd == "ARG":
            name, _, default = command.value[0].partition("=")
            out[name] = default
    return out


def base_image(stage: list[Any]) -> str:
    image = stage[0].value[0]
    return re.sub(r"\$\{(\w+)\}", lambda m: build_args()[m.group(1)], image)


def last(stage: list[Any], cmd: str) -> Any:
    found = [c for c in stage if c.cmd == cmd]
    assert found, f"no {cmd} in the stage"
    return found[-1]


def test_builds_a_wheel_then_installs_it_into_a_slim_runtime() -> None:
    builder, runtime = stages()
    assert builder[0].value[1:] == ("AS", "builder")
    assert any("pip wheel" in c.value[0] for c in builder if c.cmd == "RUN")
    installs = [c for c in runtime if c.cmd == "RUN" and "pip install" in c.value[0]]
    assert len(installs) == 1
    assert "--no-index" in installs[0].value[0]  # only the builder's wheels
    assert "from=builder" in " ".join(installs[0].flags)
    for stage in (builder, runtime):
        image = base_image(stage)
        name, _, tag = image.partition(":")
        assert name in {"python", "docker.io/library/python"}, image
        # Pinned to a patch release of the project's Python, slim.
        assert re.fullmatch(r"3\.11\.\d+-slim(-\w+)?", tag), image


def test_runs_as_the_pods_unprivileged_user_with_the_pods_command() -> None:
    runtime = stages()[-1]
    user = last(runtime, "USER").value[0]
    uid, _, gid = user.partition(":")
    # Numeric, so the kubelet can verify runAsNonRoot without looking inside the image.
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    entrypoint, cmd = last(runtime, "ENTRYPOINT"), last(runtime, "CMD")
    assert entrypoint.json and cmd.json
    assert list(entrypoint.value) == ["mcobs"]
    assert list(cmd.value) == ["serve", "--config", "/etc/mcobs/mcobs.yaml"]

    deployment = one(kustomize(BASE), "Deployment", "mcobs")
    assert pod_spec(deployment)["securityContext"]["runAsUser"] == int(uid)
    assert pod_spec(deployment)["securityContext"]["runAsGroup"] == int(gid)
    hub = container(deployment, "mcobs")
    assert hub["command"] + hub["args"] == [*entrypoint.value, *cmd.value]
    exposed = set(last(runtime, "EXPOSE").value)
    ports = {f"{p['containerPort']}/{p['protocol'].lower()}" for p in hub["ports"]}
    assert exposed == ports


def test_no_remote_sources_and_no_baked_secrets() -> None:
    secretish = re.compile(r"token|secret|passw|api_?key|credential|kubeconfig", re.IGNORECASE)
    for command in commands():
        assert command.cmd != "ADD", "use COPY; ADD fetches URLs and unpacks archives"
        if command.cmd in ("ARG", "ENV"):
            names = command.value[::2] if command.cmd == "ENV" else command.value
            for name in names:
                assert not secretish.search(name.split("=")[0]), command.original
        if command.cmd == "COPY":
            for source in command.value[:-1]:
                assert not secretish.search(source), command.original
                assert (ROOT / source).exists(), command.original


def test_hadolint_finds_nothing() -> None:
    hadolint = venv_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the build context ------------------------------------------------------------------------


def ignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            patterns.append((negate, line.lstrip("!").strip("/")))
    return patterns


def pattern_matches(pattern: str, path: str) -> bool:
    """Docker's rule: a pattern matching the path or one of its parents matches."""
    regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
    regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    regex = re.sub(r"\\\[(.*?)\\\]", lambda m: "[" + m.group(1) + "]", regex)
    parts = path.split("/")
    return any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1))


def in_context(path: str) -> bool:
    included = True
    for negate, pattern in ignore_patterns():
        if pattern_matches(pattern, path):
            included = negate
    return included


def context_files() -> list[str]:
    out = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        # Hidden top-level entries (.git, .venv, caches) are out: asserted below.
        if relative.parts[0].startswith(".") or not path.is_file():
            continue
        name = relative.as_posix()
        if in_context(name):
            out.append(name)
    return sorted(out)


def test_context_holds_the_package_and_nothing_else() -> None:
    files = context_files()
    assert "pyproject.toml" in files and "README.md" in files
    sources = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "mcobs").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert [f for f in files if f.startswith("mcobs/")] == sources
    outside = [f for f in files if f not in ("pyproject.toml", "README.md", *sources)]
    assert not outside, outside
    for unwanted in ("tests/conftest.py", "deploy/mcobs.example.yaml", "Dockerfile"):
        assert not in_context(unwanted)
    for hidden in (".venv/bin/python", ".git/config", ".env", ".dockerignore"):
        assert not in_context(hidden), hidden
    assert not in_context("mcobs/__pycache__/cli.cpython-311.pyc")
    assert not in_context("kubeconfig") and not in_context("mcobs.yaml")
    assert in_context("mcobs/cli.py")


def test_the_builder_stage_builds_the_wheel_from_that_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for name in context_files():
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    wheels = tmp_path / "wheels"
    # The builder runs `pip wheel .` (with dependencies); --no-deps keeps this offline-ish.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = wheels.glob("mcobs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert re.search(r"^mcobs = mcobs\.cli:main$", scripts, re.MULTILINE)
    modules = {f for f in context_files() if f.startswith("mcobs/") and f.endswith(".py")}
    assert modules <= names
