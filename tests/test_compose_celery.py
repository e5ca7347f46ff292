"""docker-compose.celery.yml is a valid override of docker-compose.yml (no Docker engine here: static checks)."""

from __future__ import annotations

import yaml

from pingan.core.settings import PROJECT_ROOT

BASE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
CELERY = yaml.safe_load((PROJECT_ROOT / "docker-compose.celery.yml").read_text())


def airflow_services(compose: dict) -> set[str]:
    return {n for n, s in compose["services"].items() if str(s.get("image", "")).startswith("apache/airflow")}


def test_overrides_only_existing_services_and_depends_on_known_ones():
    base, override = BASE["services"], CELERY["services"]
    new = {n for n, s in override.items() if "image" in s}
    assert new == {"redis", "airflow-worker"}
    assert set(override) - new <= set(base), (
        f"overrides unknown services {sorted(set(override) - new - set(base))}"
    )
    known = set(base) | set(override)
    for name, service in override.items():
        assert set(service.get("depends_on", {})) <= known, (name, service.get("depends_on"))
    assert all(s.get("profiles") == ["celery"] for n, s in override.items() if n in new)


def test_every_airflow_process_runs_the_celery_executor():
    for name in airflow_services(BASE) | airflow_services(CELERY):
        env = CELERY["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:"), name


def test_workers_share_only_the_object_store_and_the_metadata_database():
    worker = CELERY["services"]["airflow-worker"]
    named_volumes = set(BASE.get("volumes") or {}) | set(CELERY.get("volumes") or {})
    mounted = {v.split(":", 1)[0] for v in worker.get("volumes", [])}
    assert not mounted & named_volumes, f"worker mounts shared volumes {mounted & named_volumes}"
    env = worker["environment"]
    assert env["PINGAN_LAKE_URL"].startswith("s3://") and env["PINGAN_S3_ENDPOINT"].startswith("minio:")
    assert "@postgres:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert not env["PINGAN_HOME"].startswith("/opt/pingan/var")  # local scratch, not the shared var volume


def test_the_celery_settings_are_the_ones_the_celery_night_test_runs():
    """tests/dags/test_celery_night.py runs Airflow with these keys on loopback; the compose file must set
    the same ones (values differ only in host names and timeouts)."""
    env = CELERY["x-celery"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "2"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    assert {
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
        "AIRFLOW__CELERY__BROKER_URL",
    } <= set(env)
