"""The Docker deployment, checked statically (no Docker engine here): docker-compose.yml parses, every
dependency exists, image versions match pyproject.toml, every variable the prod deployment checks is set,
and ports agree."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from pingan.core.deployment import required_variables
from pingan.core.settings import PROJECT_ROOT, load_settings

AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    lines = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {k.strip(): v.strip() for k, v in pairs}


def _pyproject_pin(name: str) -> str:
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d.split("==")[1] for d in deps if d.startswith(f"{name}==")]
    return pin


def test_every_dependency_is_a_service_and_healthy_ones_have_a_healthcheck(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"
    for name in (*AIRFLOW_SERVICES, "minio", "postgres"):
        assert "healthcheck" in services[name], name
    declared = set(compose["volumes"])
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            assert source in declared, f"{name} mounts {source}, not a named volume"


def test_images_are_pinned_and_airflow_matches_pyproject(compose):
    for name, svc in compose["services"].items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned image {image}"
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert f"apache/airflow:{_pyproject_pin('apache-airflow')}-python3.11" in bases
    assert f'"apache-airflow=={_pyproject_pin("apache-airflow")}"' in dockerfile  # pip may not move it
    assert all(":" in b and not b.endswith(":latest") for b in bases), bases
    for name in (*AIRFLOW_SERVICES, "airflow-init", "pingan-init"):
        svc = compose["services"][name]
        assert svc["image"] == "pingan/airflow:0.1.0" and svc["build"]["dockerfile"] == "Dockerfile", name
        assert (PROJECT_ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).exists()


def test_every_variable_the_prod_deployment_checks_is_set(compose, env_example):
    settings = load_settings({"PINGAN_DEPLOYMENT": "prod"})
    for name in (*AIRFLOW_SERVICES, "pingan-init"):
        svc = compose["services"][name]
        assert svc["env_file"] == ".env"
        env = {**env_example, **{k: str(v) for k, v in svc["environment"].items()}}
        assert env["PINGAN_DEPLOYMENT"] == "prod"
        missing = [v for v in required_variables(settings) if not env.get(v)]
        assert missing == [], f"{name} lacks {missing}"
    # every ${VAR} the compose file interpolates is in .env.example
    text = (PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)\}", text))
    assert used - set(env_example) == set()
    partners = {p.stem.upper() for p in (PROJECT_ROOT / "agreements").glob("*.yaml")}
    assert {
        k.removeprefix("PINGAN_SHARE_KEY_") for k in env_example if k.startswith("PINGAN_SHARE_KEY_")
    } == partners


def test_ports_agree(compose):
    services = compose["services"]
    api = services["airflow-api-server"]
    (mapping,) = api["ports"]
    host, container = mapping.split(":")
    assert f"--port {container}" in " ".join(api["command"])
    assert f"localhost:{container}/" in " ".join(api["healthcheck"]["test"])
    env = services["airflow-scheduler"]["environment"]
    assert (
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-api-server:{container}/execution/"
    )
    s3_host, s3_port = env["PINGAN_S3_ENDPOINT"].split(":")
    assert s3_host == "minio" and f"{s3_port}:{s3_port}" in services["minio"]["ports"]
    assert f"http://minio:{s3_port}" in services["pingan-init"]["command"][0]
    assert "postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_the_init_job_creates_every_bucket_the_stores_name_and_provisions_partners(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    buckets = {
        env[v].removeprefix("s3://").split("/")[0]
        for v in ("PINGAN_LAKE_URL", "PINGAN_LANDING_URL", "PINGAN_SHARE_URL")
    }
    script = compose["services"]["pingan-init"]["command"][0]
    for bucket in buckets:
        assert f"pingan/{bucket}" in script
    assert script.rstrip().endswith("pingan partners provision")
