"""The production deployment in infra/ validates offline (issue #7): the compose file against the
Compose specification (docker compose config), the Kubernetes base, rendered by kustomize,
against the Kubernetes schemas; and a broken copy of each is rejected."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from citylake import deploy_check
from citylake.deploy_check import DeployCheckError, DeployTools


@pytest.fixture(scope="module")
def tools() -> DeployTools:
    # `make test` runs `citylake setup` first, which installs them; this is then a lookup.
    try:
        return deploy_check.install()
    except DeployCheckError as exc:
        if "not on PATH" in str(exc):
            pytest.skip(str(exc))
        raise


@pytest.fixture(scope="module")
def manifests(tools: DeployTools) -> list[dict]:
    return [d for d in yaml.safe_load_all(deploy_check.render(tools, deploy_check.K8S_BASE)) if d]


def test_compose_file_is_valid(tools: DeployTools) -> None:
    deploy_check.compose_config(tools, deploy_check.COMPOSE_FILE, deploy_check.COMPOSE_ENV_EXAMPLE)


def test_compose_has_the_production_services() -> None:
    compose = yaml.safe_load(deploy_check.COMPOSE_FILE.read_text())
    services = compose["services"]
    minio = [s for s in services if s.startswith("minio") and s != "minio-init"]
    assert len(minio) == 4
    assert "http://minio{1...4}/data{1...2}" in services["minio1"]["command"]
    assert {"trino-coordinator", "trino-worker-1", "trino-worker-2"} <= set(services)
    airflow = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"}
    assert airflow | {"airflow-triggerer", "airflow-worker"} <= set(services)
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == (
        "CeleryExecutor"
    )
    for name, service in services.items():
        assert ":" in service["image"] and not service["image"].endswith(":latest"), name
        if service.get("restart") != "no":  # long-running: bounded and watched
            assert "limits" in service["deploy"]["resources"], name
            assert "healthcheck" in service, name


def test_broken_compose_file_is_rejected(tools: DeployTools, tmp_path: Path) -> None:
    text = deploy_check.COMPOSE_FILE.read_text()
    broken = tmp_path / "compose.yaml"
    # a dependency on a service that does not exist
    broken.write_text(text.replace("trino-coordinator: {condition", "trino-coordinatr: {condition"))
    with pytest.raises(DeployCheckError, match="trino-coordinatr"):
        deploy_check.compose_config(tools, broken, deploy_check.COMPOSE_ENV_EXAMPLE)


def test_kubernetes_base_is_valid(tools: DeployTools, manifests: list[dict]) -> None:
    deploy_check.validate_manifests(tools, yaml.safe_dump_all(manifests))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in manifests}
    assert {
        ("HorizontalPodAutoscaler", "trino-worker"),
        ("HorizontalPodAutoscaler", "api"),
    } <= kinds
    assert ("PodDisruptionBudget", "minio") in kinds
    for doc in manifests:
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        for container in (pod or {}).get("containers", []):
            assert {"requests", "limits"} <= set(container["resources"]), doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("unknown_field", "replica"),  # a misspelt field: strict schemas reject it
        ("wrong_type", "minReplicas"),
    ],
)
def test_broken_manifest_is_rejected(
    tools: DeployTools, manifests: list[dict], breakage: str, message: str
) -> None:
    # only the kind broken (each object costs the validator a schema load)
    kind = "Deployment" if breakage == "unknown_field" else "HorizontalPodAutoscaler"
    broken = [dict(d) for d in manifests if d["kind"] == kind]
    for doc in broken:
        if breakage == "unknown_field":
            doc["spec"] = dict(doc["spec"]) | {"replica": 3}
        else:
            doc["spec"] = dict(doc["spec"]) | {"minReplicas": "two"}
    with pytest.raises(DeployCheckError, match=message):
        deploy_check.validate_manifests(tools, yaml.safe_dump_all(broken))


def test_broken_kustomization_is_rejected(tools: DeployTools, tmp_path: Path) -> None:
    base = tmp_path / "infra" / "k8s" / "base"
    shutil.copytree(deploy_check.K8S_BASE, base)
    # the config files it names live beside it in infra/compose/config
    shutil.copytree(deploy_check.COMPOSE_FILE.parent / "config", tmp_path / "infra/compose/config")
    (base / "api.yaml").write_text((base / "api.yaml").read_text().replace("kind: Service\n", ""))
    with pytest.raises(DeployCheckError):
        deploy_check.render(tools, base)
