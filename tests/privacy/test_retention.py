"""Retention of raw personal data: past its entity's period it leaves the restricted store, the facts stay."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pingan.core.canonical import PERSONAL_DATA_RETENTION_DAYS
from pingan.core.settings import load_settings
from pingan.warehouse.restricted import ALIAS, TABLE, attach, restricted_key

BIN = Path(sys.executable).parent


def _restricted_counts(home: Path) -> dict[str, int]:
    con = duckdb.connect()
    attach(con, home / "restricted.duckdb", restricted_key(load_settings({"PINGAN_HOME": str(home)})))
    return dict(con.execute(f"select entity, count(*) from {ALIAS}.{TABLE} group by 1").fetchall())


@pytest.mark.slow
def test_incident_callers_leave_the_restricted_store_after_180_days(demo_home: Path, tmp_path: Path):
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    before = _restricted_counts(home)
    assert before["incident"] > 0 and before["enterprise"] > 0
    assert PERSONAL_DATA_RETENTION_DAYS["incident"] == 180
    # the demo loaded 2025-03-01 and 03-02: on 2025-08-30 both incident days are past 180 days
    env = {**os.environ, "PINGAN_HOME": str(home)}
    run = subprocess.run([str(BIN / "pingan"), "retention", "--date", "2025-08-30"], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    after = _restricted_counts(home)
    assert "incident" not in after and after["enterprise"] == before["enterprise"]

    wh = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    assert wh.execute("select count(caller_phone) from fct_incidents").fetchone()[0] > 0  # facts stay

    log = sorted((home / "shares" / "audit" / "log").glob("*.json"))
    entries = [json.loads(f.read_text()) for f in log[-2:]]  # the restricted store's, then the lake's
    assert [(e["event"], e["detail"]["tier"]) for e in entries] == [
        ("personal_data_retention", "restricted"),
        ("personal_data_retention", "lake"),
    ]
    entry = entries[0]
    assert entry["detail"]["rows_before"] == sum(before.values())
    assert entry["detail"]["rows_after"] == sum(after.values())
