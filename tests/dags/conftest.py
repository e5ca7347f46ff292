"""Airflow reads its configuration when first imported: point it at a throwaway home before that."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pingan.core.settings import PROJECT_ROOT

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="pingan-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database (about 10 s), needed by dag.test()."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return AIRFLOW_HOME


@pytest.fixture
def connectors_far_from_now(tmp_path, monkeypatch) -> int:
    """The feed specs with their nightly cron and deadline moved twelve hours away from now (Shanghai
    time), for tests whose scheduler runs with the DAGs unpaused: a cron that fired during the test would
    start real-date runs beside the test's own (a cursor feed would load today's changes). Set as
    PINGAN_CONNECTORS_DIR, which the Airflow processes the test starts inherit. Returns the cron's hour: a
    backfill's runs fall on it (a run at that hour on day D+1 loads day D)."""
    import shutil
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import yaml

    from pingan.core.canonical import TZ

    target = tmp_path / "connectors"
    shutil.copytree(PROJECT_ROOT / "connectors", target)
    hour = (datetime.now(ZoneInfo(TZ)).hour + 12) % 24
    defaults = target / "_defaults.yaml"
    spec = yaml.safe_load(defaults.read_text(encoding="utf-8"))
    spec["schedule"] = f"0 {hour} * * *"
    spec["freshness"] = {**spec["freshness"], "deadline": f"{hour:02d}:30"}
    defaults.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("PINGAN_CONNECTORS_DIR", str(target))
    return hour
