"""`make airflow` as a new user runs it (the venv's bin not on PATH), driven through Airflow's REST API:
the nightly chain triggered for one day ends in an asset-triggered warehouse run that succeeds, then a
three-day backfill of one feed loads exactly those days, and a second one changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from s3_server import free_port

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store

DAY = date(2025, 3, 1)
FEEDS = sorted(load_specs(PROJECT_ROOT / "connectors"))
BACKFILLED = "jiashan_incidents"


class Airflow:
    def __init__(self, port: int, home: Path):
        self.base = f"http://127.0.0.1:{port}"
        self.home = home
        self.session = requests.Session()

    def login(self) -> None:
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        token = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": passwords["admin"]}, timeout=30
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def api(self, method: str, path: str, **kwargs) -> dict:
        r = self.session.request(method, f"{self.base}/api/v2{path}", timeout=60, **kwargs)
        assert r.ok, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def create_backfill(self, body: dict) -> dict | None:
        r = self.session.post(f"{self.base}/api/v2/backfills", json=body, timeout=60)
        if r.status_code == 503:
            return None
        assert r.ok, f"POST /backfills: {r.status_code} {r.text[:500]}"
        return r.json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]


def wait_for(what: str, check, timeout: float, every: float = 3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (requests.RequestException, FileNotFoundError, KeyError):
            found = None
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def nightly(day: date, hour: int) -> str:
    """The logical date of day's nightly run: the feeds' cron hour (connectors_far_from_now) the day after."""
    return f"{day + timedelta(days=1)}T{hour:02d}:00:00+08:00"


@pytest.fixture
def standalone(home, tmp_path, connectors_far_from_now):
    from pingan_sim import simulate

    settings = load_settings()
    simulate(
        settings.home,
        Store(settings.landing_url),
        DAY,
        DAY + timedelta(days=2),
        seed=5,
        scale=0.02,
        defect_rate=0.0,
    )  # no defects: this test is about orchestration, not the gate
    port, airflow_home = free_port(), tmp_path / "airflow"
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW_PORT": str(port),
        "PINGAN_TASK_RETRIES": "0",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # no cron fires during the test (connectors_far_from_now)
        "PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin),
    }
    log = (tmp_path / "standalone.log").open("w")
    proc = subprocess.Popen(
        ["make", "-s", "-C", str(PROJECT_ROOT), "airflow"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    airflow = Airflow(port, airflow_home)
    try:
        wait_for(
            "the API server",
            lambda: requests.get(f"{airflow.base}/api/v2/monitor/health", timeout=5).ok,
            timeout=300,
        )
        wait_for("a login with the generated admin password", lambda: airflow.login() or True, timeout=120)
        yield airflow, settings
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.mark.slow
def test_make_airflow_runs_the_night_and_a_backfill_through_the_rest_api(standalone, connectors_far_from_now):
    airflow, settings = standalone
    hour = connectors_far_from_now
    lake = Store(settings.lake_url)
    dags = wait_for(
        "every DAG parsed",
        lambda: (
            {d["dag_id"] for d in airflow.api("GET", "/dags", params={"limit": 100})["dags"]}
            >= {f"ingest_{f}" for f in FEEDS}
        ),
        timeout=300,
    )
    assert dags

    # the nightly chain: every feed's run for DAY; the scheduler fires the warehouse on their assets
    triggered = {
        f: airflow.api("POST", f"/dags/ingest_{f}/dagRuns", json={"logical_date": nightly(DAY, hour)})[
            "dag_run_id"
        ]
        for f in FEEDS
    }

    def warehouse_done():
        runs = [r for r in airflow.runs("warehouse_build_and_publish") if r["run_type"] == "asset_triggered"]
        assert not [r for r in runs if r["state"] == "failed"], runs
        return [r for r in runs if r["state"] == "success"]

    wait_for("the asset-triggered warehouse run", warehouse_done, timeout=900, every=5)
    for feed, run_id in triggered.items():
        assert airflow.api("GET", f"/dags/ingest_{feed}/dagRuns/{run_id}")["state"] == "success", feed
    assert settings.warehouse_path.exists()

    # a backfill of three days of one feed, twice: exactly those days, the second run changes nothing
    def backfill(reprocess: str) -> None:
        body = {
            "dag_id": f"ingest_{BACKFILLED}",
            "from_date": nightly(DAY, hour),
            "to_date": nightly(DAY + timedelta(days=2), hour),
            "reprocess_behavior": reprocess,
            "max_active_runs": 1,
        }
        # on SQLite the API refuses a backfill (503) while the scheduler holds the database: ask again
        created = wait_for("the backfill to be created", lambda: airflow.create_backfill(body), timeout=120)
        wait_for(
            "the backfill to complete",
            lambda: airflow.api("GET", f"/backfills/{created['id']}")["completed_at"],
            timeout=600,
            every=5,
        )
        states = {
            r["logical_date"][:10]: r["state"]
            for r in airflow.runs(f"ingest_{BACKFILLED}")
            if r["logical_date"]
            and datetime.fromisoformat(r["logical_date"])
            <= datetime.fromisoformat(nightly(DAY + timedelta(days=2), hour))
        }
        assert set(states.values()) == {"success"} and len(states) == 3, states

    backfill("none")
    days = [DAY + timedelta(days=i) for i in range(3)]
    assert raw_zone.committed_dates(lake, BACKFILLED) == days
    first = {m.load_date: m.rows_written for m in raw_zone.committed_manifest_records(lake, BACKFILLED)}
    backfill("completed")
    assert raw_zone.committed_dates(lake, BACKFILLED) == days
    assert {
        m.load_date: m.rows_written for m in raw_zone.committed_manifest_records(lake, BACKFILLED)
    } == first
