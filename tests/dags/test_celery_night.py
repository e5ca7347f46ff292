"""Airflow as it runs in production: the CeleryExecutor with PostgreSQL and Redis, one whole night.

PostgreSQL 15 (metadata database and Celery's result backend) and Redis (the broker) run on 127.0.0.1
from the machine's packages (tests/loopback_services.py). Airflow runs as separate processes, as the
compose file's services do (docker-compose.celery.yml): scheduler, dag-processor, api-server and one
Celery worker with two slots, all with the same settings and one JWT secret (the worker's tasks report
through the API server's execution API). The night is triggered through the REST API: every feed's
ingest, which the worker runs two at a time, then the asset-triggered warehouse build and publication.
While the first load runs, the worker is killed (SIGKILL to its process group, as when a machine dies)
and a new one started: the scheduler finds the task's heartbeat gone, the retry runs on the new worker,
and the night completes with one batch per feed, nothing loaded twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests
import sqlalchemy
from loopback_services import ServiceUnavailable, free_port, running_postgres, running_redis

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

DAY = date(2025, 3, 1)
FEEDS = sorted(load_specs(PROJECT_ROOT / "connectors"))
WAREHOUSE_DAG = "warehouse_build_and_publish"
WORKER_SLOTS = 2
# scheduler, dag-processor and api-server as the compose file starts them; logs read from files on one host
COMPONENTS = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--workers", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "celery-worker": ["celery", "worker", "--concurrency", str(WORKER_SLOTS), "--skip-serve-logs",
                      "--without-gossip", "--without-mingle"],
}  # fmt: skip


class RestApi:
    def __init__(self, port: int, airflow_home: Path):
        self.base = f"http://127.0.0.1:{port}"
        self.home = airflow_home
        self.session = requests.Session()

    def login(self) -> bool:
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        token = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": passwords["admin"]}, timeout=30
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        return True

    def get(self, path: str, **params) -> dict:
        r = self.session.get(f"{self.base}/api/v2{path}", params=params, timeout=60)
        assert r.ok, f"GET {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def post(self, path: str, body: dict) -> dict:
        r = self.session.post(f"{self.base}/api/v2{path}", json=body, timeout=60)
        assert r.ok, f"POST {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]


def wait_for(what: str, check, timeout: float, every: float = 3.0, procs: dict | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, FileNotFoundError, KeyError):
            found = check()
            if found:
                return found
        dead = [name for name, p in (procs or {}).items() if p.poll() is not None]
        assert not dead, f"airflow {dead} exited while waiting for {what}"
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def airflow_env(airflow_home: Path, port: int, database_url: str, broker_url: str) -> dict[str, str]:
    """One environment for every component, as docker-compose.celery.yml's x-celery block gives them."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": os.pathsep.join([venv_bin, os.environ["PATH"]]),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_SLOTS),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # no cron fires during the test (connectors_far_from_now)
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # a task whose worker died is failed after 30 s without a heartbeat, then retried 5 s later
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "PINGAN_TASK_RETRIES": "1",
        "PINGAN_TASK_RETRY_DELAY_SECONDS": "5",
    }


@pytest.fixture
def celery_airflow(home, tmp_path, connectors_far_from_now):
    """(REST client, pingan settings, database URL) with every Airflow component running on loopback."""
    from pingan_sim import simulate

    settings = load_settings()
    # no defects: this test is about the executor, not the gate
    simulate(settings.home, Store(settings.landing_url), DAY, DAY, seed=5, scale=0.02, defect_rate=0.0)
    try:
        services = contextlib.ExitStack()
        with services:
            pg = services.enter_context(running_postgres())
            broker = services.enter_context(running_redis(tmp_path / "redis"))
            port, airflow_home = free_port(), tmp_path / "airflow"
            env = airflow_env(airflow_home, port, pg.url, broker)
            airflow = [str(Path(sys.executable).parent / "airflow")]
            subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
            procs = services.enter_context(components(airflow, env, tmp_path / "logs"))
            api = RestApi(port, airflow_home)
            wait_for(
                "the API server", lambda: requests.get(f"{api.base}/api/v2/monitor/health").ok, 300, 2, procs
            )
            wait_for("a login with the generated admin password", api.login, 120, 2, procs)
            yield api, settings, pg.url, procs
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))


class Components(dict):
    """The running Airflow processes by name, each in its own process group."""

    def __init__(self, airflow: list[str], env: dict[str, str], log_dir: Path):
        super().__init__()
        self.airflow, self.env, self.log_dir = airflow, env, log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        for name in COMPONENTS:
            self.start(name)

    def start(self, name: str, log_name: str | None = None) -> None:
        self[name] = subprocess.Popen(
            [*self.airflow, *COMPONENTS[name]],
            env=self.env,
            stdout=(self.log_dir / f"{log_name or name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL to the process group, as when the machine dies, then a new one in its place."""
        os.killpg(self[name].pid, signal.SIGKILL)
        self[name].wait(timeout=30)
        self.start(name, log_name=f"{name}-2")


@contextlib.contextmanager
def components(airflow: list[str], env: dict[str, str], log_dir: Path):
    procs = Components(airflow, env, log_dir)
    try:
        yield procs
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def nightly(day: date) -> str:
    return f"{day + timedelta(days=1)}T02:00:00+08:00"


def most_at_once(task_instances: list[dict]) -> int:
    """The largest number of task instances that were running at the same moment."""
    edges = sorted(
        (datetime.fromisoformat(ti[key]), step)
        for ti in task_instances
        for key, step in (("start_date", 1), ("end_date", -1))
    )
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant (-1 < 1)
        running += step
        peak = max(peak, running)
    return peak


def test_one_night_runs_on_celery_with_postgres_and_redis(celery_airflow):
    api, settings, database_url, procs = celery_airflow
    wanted = {f"ingest_{f}" for f in FEEDS} | {WAREHOUSE_DAG}
    wait_for(
        "every DAG parsed",
        lambda: {d["dag_id"] for d in api.get("/dags", limit=100)["dags"]} >= wanted,
        timeout=300,
        procs=procs,
    )
    runs = {
        f: api.post(f"/dags/ingest_{f}/dagRuns", {"logical_date": nightly(DAY)})["dag_run_id"] for f in FEEDS
    }

    def every_slot_loading() -> set[str] | None:
        tis = [ti for f, run_id in runs.items() for ti in api.task_instances(f"ingest_{f}", run_id)]
        running = {ti["dag_id"] for ti in tis if ti["state"] == "running"}
        return running if len(running) == WORKER_SLOTS else None

    # killed when both slots run a load (a load takes many seconds): the worker then holds no message it
    # has not started (it prefetches one per slot), which Airflow would only re-queue after
    # [scheduler] task_queued_timeout (10 minutes)
    killed = wait_for(
        "two loads running on the worker", every_slot_loading, timeout=300, every=1, procs=procs
    )
    procs.kill_and_restart("celery-worker")

    def warehouse_run():
        found = [r for r in api.get(f"/dags/{WAREHOUSE_DAG}/dagRuns")["dag_runs"] if r["state"] != "queued"]
        assert not [r for r in found if r["state"] == "failed"], found
        return next((r for r in found if r["state"] == "success"), None)

    warehouse = wait_for(
        "the asset-triggered warehouse run", warehouse_run, timeout=900, every=5, procs=procs
    )
    assert warehouse["run_type"] == "asset_triggered"

    ingest_tis = [ti for f, run_id in runs.items() for ti in api.task_instances(f"ingest_{f}", run_id)]
    warehouse_tis = api.task_instances(WAREHOUSE_DAG, warehouse["dag_run_id"])
    states = {
        (ti["dag_id"], ti["task_id"]): (ti["state"], ti["try_number"]) for ti in ingest_tis + warehouse_tis
    }
    expected = {(f"ingest_{f}", "load") for f in FEEDS} | {
        (WAREHOUSE_DAG, "build"),
        (WAREHOUSE_DAG, "publish"),
    }
    assert set(states) == expected
    # the killed worker's loads ran again on the new worker; every other task ran once
    assert killed and {states.pop((dag_id, "load")) for dag_id in killed} == {("success", 2)}, states
    assert all(state == ("success", 1) for state in states.values()), states
    # the worker's two slots ran the feeds' loads in parallel, never more than two at once
    assert most_at_once(ingest_tis) == WORKER_SLOTS

    # every try went through Celery, one record each in the PostgreSQL result backend: the killed tries
    # stay `STARTED` (their worker died before recording an outcome), none failed
    with sqlalchemy.create_engine(database_url).connect() as con:
        results = dict(
            con.exec_driver_sql("select status, count(*) from celery_taskmeta group by status").fetchall()
        )
    assert sum(results.values()) == len(expected) + len(killed), results
    assert set(results) == {"SUCCESS", "STARTED"} and results["STARTED"] >= len(killed), results

    # the night's data: one committed batch per feed for DAY, and marts that know every feed is fresh
    lake = Store(settings.lake_url)
    assert {f: raw_zone.committed_dates(lake, f) for f in FEEDS} == {f: [DAY] for f in FEEDS}
    assert {f: len(raw_zone.committed_manifest_records(lake, f)) for f in FEEDS} == {f: 1 for f in FEEDS}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        freshness = dict(
            con.execute("select source_feed, latest_load_date from mart_feed_freshness").fetchall()
        )
        incidents = con.execute("select count(*) from fct_incidents").fetchone()[0]
    assert freshness == {f: DAY for f in FEEDS}
    assert incidents > 0
