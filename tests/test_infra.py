"""infra/ and the Dockerfile, checked offline as far as that goes (no engine, no cluster here):

- every Kubernetes object against the Kubernetes API's own OpenAPI schema, strictly (an unknown
  or misspelt field fails), with kubernetes-validate; the DaskCluster's pod and service specs the
  same way (the operator's CRD itself is not on this machine: only its references are checked);
- every RAILWATCH_ setting that the compose file, the ConfigMap/Secret and the Dockerfile give
  railwatch is one railwatch knows, its value is accepted by the settings object, and its
  catalog sources open (a misspelt variable is otherwise silently ignored in production);
- names that must agree across files do: the work pool, the rate limits, the services, the
  volumes, the files the Dockerfile copies.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from railwatch.adapters.catalogs.sources import open_catalog
from railwatch.settings import Settings
from tasks.limits import limit_name
from tests.test_deployments import project

REPO = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.30.0"  # the Kubernetes API the manifests are checked against (infra/README.md)


def work_pool() -> str:
    name: str = project()["deployments"][0]["work_pool"]["name"]
    return name


@cache  # read-only: every test reads the same files
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "infra" / "compose.yaml").read_text())
    return loaded


@cache
def k8s_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in sorted((REPO / "infra" / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def validate(obj: dict[str, Any], where: str) -> None:
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{where}: {exc.message} at {'/'.join(map(str, exc.path))}")


def wrapped(kind: str, spec: dict[str, Any], name: str) -> dict[str, Any]:
    """A spec embedded in a custom resource as the built-in object it is (a PodSpec as a Pod)."""
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_kubernetes_objects_match_the_api_schema() -> None:
    objects = k8s_objects()
    assert {"Namespace", "ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "Deployment",
            "DaskCluster", "DaskAutoscaler"} <= {doc["kind"] for _, doc in objects}
    clusters = {doc["metadata"]["name"] for _, doc in objects if doc["kind"] == "DaskCluster"}
    for path, doc in objects:
        where = f"infra/k8s/{path}: {doc['kind']} {doc['metadata']['name']}"
        if doc["apiVersion"].startswith("kubernetes.dask.org/"):
            spec = doc["spec"]
            if doc["kind"] == "DaskCluster":
                validate(wrapped("Pod", spec["worker"]["spec"], "worker"), f"{where} worker spec")
                validate(wrapped("Pod", spec["scheduler"]["spec"], "scheduler"), f"{where} scheduler spec")
                validate(wrapped("Service", spec["scheduler"]["service"], "scheduler"),
                         f"{where} scheduler service")
                assert isinstance(spec["worker"]["replicas"], int), where
            else:
                assert spec["cluster"] in clusters, f"{where}: no DaskCluster {spec['cluster']!r}"
                assert 0 < spec["minimum"] <= spec["maximum"], where
            continue
        validate(doc, where)


def test_a_misspelt_field_fails_the_schema_check() -> None:
    """The check above can fail: strict validation rejects a field the API does not have."""
    deployment = next(doc for _, doc in k8s_objects() if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**deployment, "spec": {**deployment["spec"], "template": {
        **deployment["spec"]["template"], "spec": {
            **deployment["spec"]["template"]["spec"], "containers": [
                {**container, "envFrm": container["envFrom"]}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def known_variables() -> set[str]:
    """The environment variables railwatch reads: its settings (prefix or alias) and the ones
    prefect.yaml's steps use."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"RAILWATCH_{name.upper()}")
        aliases = getattr(field.validation_alias, "choices", None) or []
        names.update(a for a in aliases if isinstance(a, str))
    names.update(re.findall(r"\$(RAILWATCH_\w+)", (REPO / "prefect.yaml").read_text()))
    return names


def dockerfile_env() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                key, value = item.split("=", 1)
                env[key] = value
    return env


def k8s_settings() -> dict[str, str]:
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_objects()}
    return {**objects[("ConfigMap", "railwatch")]["data"], **objects[("Secret", "railwatch")]["stringData"]}


GIVEN_SETTINGS: dict[str, Callable[[], dict[str, str]]] = {
    "infra/compose.yaml": lambda: {k: str(v) for k, v in compose()["x-railwatch"]["environment"].items()},
    "infra/k8s/config.yaml": k8s_settings,
    "Dockerfile": dockerfile_env,
}


@pytest.mark.parametrize("source", list(GIVEN_SETTINGS))
def test_settings_given_to_railwatch_are_known_and_valid(source: str, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    env = GIVEN_SETTINGS[source]()
    unknown = {k for k in env if k.startswith("RAILWATCH_")} - known_variables()
    assert not unknown, f"{source}: railwatch reads no such variable: {sorted(unknown)}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # raises on a value railwatch does not accept (a bad JSON list, say)
    for catalog in settings.catalogs:
        open_catalog(catalog, tmp_path, settings.asset_maps)


def test_an_unknown_setting_is_caught() -> None:
    """The check above can fail: a misspelt variable is not among the known ones."""
    assert "RAILWATCH_STORE" in known_variables()
    assert "RAILWATCH_STORE_URL" not in known_variables()


def test_names_agree_across_files() -> None:
    services = compose()["services"]
    assert {"postgres", "prefect", "worker", "deploy", "dask-scheduler", "dask-worker", "s3",
            "stac-api"} <= set(services)
    for name, service in services.items():
        needs = service.get("depends_on", {})
        for other in needs:
            assert other in services, f"compose service {name} depends on unknown {other}"
            if isinstance(needs, dict) and needs[other].get("condition") == "service_healthy":
                check = services[other].get("healthcheck", {})
                assert check and not check.get("disable"), f"{name} waits for {other}'s health check"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / "infra" / source).exists(), f"compose service {name}: no {source}"
            else:
                assert source in compose()["volumes"], f"compose service {name}: undeclared {source}"
    pool = work_pool()
    deploy = " ".join(services["deploy"]["command"])
    assert f"work-pool create {pool} " in deploy
    for source in ("planet", "stac+https://example.org/v1"):
        assert f"gcl create {limit_name(source)} " in deploy, "the deploy step creates every rate limit"
    build = compose()["x-railwatch"]["build"]
    assert (REPO / "infra" / build["context"] / build["dockerfile"]).is_file()
    worker = next(doc for _, doc in k8s_objects() if doc["kind"] == "Deployment")
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"--pool\", \"{pool}\"" in dockerfile
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"][3:5] == ["--pool", pool]
    for copied in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M):
        for path in copied.split():
            assert (REPO / path).exists(), f"the Dockerfile copies {path}, which is missing"
