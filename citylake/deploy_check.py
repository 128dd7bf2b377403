"""Offline validation of the production deployment in ``infra/`` (issue #7).

Three pinned tools, built or installed once by `citylake setup` into ``.cache/deploy/``:

- ``docker-compose`` (Compose v5, the ``docker compose`` plugin) built from its module with the
  machine's Go. ``go install module@version`` refuses it (its go.mod has ``exclude``
  directives), so the set-up downloads the module through the Go module proxy and builds
  ``./cmd`` inside it, where its own go.mod and go.sum apply. ``docker-compose config -q``
  loads, interpolates and validates a compose file against the Compose specification
  without a Docker engine.
- ``kustomize`` (``go install sigs.k8s.io/kustomize/kustomize/v5@<version>``) renders
  ``infra/k8s/base`` into plain manifests.
- ``kubernetes-validate`` (PyPI, in its own virtual environment) carries the Kubernetes JSON
  schemas of every release in its wheel and validates each rendered object against the
  schema of its apiVersion/kind, strictly (unknown fields are errors). kubeconform would
  fetch its schemas from the network at run time; this needs none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from citylake.settings import PROJECT_ROOT, Settings, get_settings

COMPOSE_MODULE = "github.com/docker/compose/v5"
COMPOSE_VERSION = "v5.6.0"
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.7.1"
KUBERNETES_VALIDATE_VERSION = "1.37.0"
# The Kubernetes release the manifests are validated for (its schemas ship in the wheel).
KUBERNETES_VERSION = "1.34.0"

COMPOSE_FILE = PROJECT_ROOT / "infra" / "compose" / "compose.yaml"
COMPOSE_ENV_EXAMPLE = PROJECT_ROOT / "infra" / "compose" / ".env.example"
K8S_BASE = PROJECT_ROOT / "infra" / "k8s" / "base"


class DeployCheckError(RuntimeError):
    """A tool could not be installed, or a deployment file was rejected."""


@dataclass(frozen=True)
class DeployTools:
    compose: Path
    kustomize: Path
    kubernetes_validate: Path


def tools_dir(settings: Settings) -> Path:
    return settings.cache_dir / "deploy"


def _tools(settings: Settings) -> DeployTools:
    root = tools_dir(settings)
    return DeployTools(
        compose=root / "bin" / f"docker-compose-{COMPOSE_VERSION}",
        kustomize=root / "bin" / f"kustomize-{KUSTOMIZE_VERSION}",
        kubernetes_validate=root
        / f"venv-{KUBERNETES_VALIDATE_VERSION}"
        / "bin"
        / "kubernetes-validate",
    )


def _run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DeployCheckError(f"{' '.join(argv[:3])} …: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise DeployCheckError("Go is needed to build docker-compose and kustomize (not on PATH)")
    return go


def _build_compose(dest: Path) -> None:
    go = _go()
    info = json.loads(_run([go, "mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"]))
    flags = f"-X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
    tmp = dest.with_suffix(".tmp")
    _run(
        [go, "build", "-trimpath", "-ldflags", flags, "-o", str(tmp), "./cmd"],
        cwd=Path(info["Dir"]),
    )
    tmp.replace(dest)


def _build_kustomize(dest: Path) -> None:
    go = _go()
    with tempfile.TemporaryDirectory(dir=dest.parent) as gobin:
        env = os.environ | {"GOBIN": gobin}
        _run([go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"], env=env)
        (Path(gobin) / "kustomize").replace(dest)


def _install_kubernetes_validate(tool: Path) -> None:
    venv = tool.parent.parent
    _run([sys.executable, "-m", "venv", "--clear", str(venv)])
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}",
        ]
    )


def install(settings: Settings | None = None) -> DeployTools:
    """Build/install the three pinned tools once into ``.cache/deploy`` (idempotent)."""
    settings = settings or get_settings()
    tools = _tools(settings)
    tools.compose.parent.mkdir(parents=True, exist_ok=True)
    if not tools.compose.is_file():
        _build_compose(tools.compose)
    if not tools.kustomize.is_file():
        _build_kustomize(tools.kustomize)
    if not tools.kubernetes_validate.is_file():
        _install_kubernetes_validate(tools.kubernetes_validate)
    return tools


def compose_config(tools: DeployTools, compose_file: Path, env_file: Path) -> None:
    """`docker compose config -q`: the file loads, interpolates and matches the Compose spec."""
    _run([str(tools.compose), "-f", str(compose_file), "--env-file", str(env_file), "config", "-q"])


def render(tools: DeployTools, base: Path) -> str:
    """The manifests of a kustomization (its config files come from infra/compose/config/)."""
    return _run(
        [str(tools.kustomize), "build", "--load-restrictor", "LoadRestrictionsNone", str(base)]
    )


def validate_manifests(tools: DeployTools, manifests: str) -> None:
    """Every object against its Kubernetes schema, strictly (unknown fields are errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(manifests)
        f.flush()
        argv = [str(tools.kubernetes_validate), "--strict", "--quiet", "--no-warn"]
        _run([*argv, "-k", KUBERNETES_VERSION, f.name])


def check(settings: Settings | None = None) -> None:
    """Validate the committed compose file and Kubernetes base; raise on the first rejection."""
    tools = install(settings)
    compose_config(tools, COMPOSE_FILE, COMPOSE_ENV_EXAMPLE)
    validate_manifests(tools, render(tools, K8S_BASE))


if __name__ == "__main__":
    check()
    print("infra/: compose file and Kubernetes manifests valid")
