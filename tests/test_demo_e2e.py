"""End to end, as an operator runs it: `pingan demo` then the analyst's documented DuckDB query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pingan.demo import ANALYST_QUERY
from pingan.sharing.keys import signing_key
from pingan.sharing.manifest import verify_snapshot
from pingan.storage import Store

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_demo_runs_every_stage_and_the_documented_query_answers(home: Path):
    env = {**os.environ, "PINGAN_HOME": str(home)}
    demo = subprocess.run([str(BIN / "pingan"), "demo", "--days", "2", "--scale", "0.1"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "duckdb -readonly" in demo.stdout and "fct_incidents" in demo.stdout

    # the exact query of the README, through the duckdb CLI installed with the project
    cli = subprocess.run([str(BIN / "duckdb"), "-readonly", "-json", str(home / "warehouse.duckdb"), ANALYST_QUERY],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    counts = {r["jurisdiction_code"]: r["incidents"] for r in json.loads(cli.stdout)}
    assert set(counts) == {"310118", "320509", "330421"} and min(counts.values()) > 50

    status = json.loads(subprocess.run([str(BIN / "pingan"), "status", "--json"], env=env, capture_output=True,
                                       text=True, check=True).stdout)
    for feed, f in status["feeds"].items():
        assert f["days_committed"] == 2, (feed, f["batches"])
        for b in f["batches"]:
            assert b["rows_read"] == b["rows_written"] + b["rows_quarantined"]

    # the warehouse holds exactly what the lake committed, deduplicated
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    fct = con.sql("select count(*), count(distinct record_id) from fct_incidents").fetchone()
    assert fct[0] == fct[1] == sum(counts.values())
    assert con.sql("select count(*) from fct_incidents where category is null").fetchone()[0] == 0

    # at least one partner share snapshot with its manifest and latest pointer
    lake = Store(f"file://{home / 'lake'}")
    public = signing_key(home / "secrets", allow_generate=False).public_key()
    pointers = [k for k in lake.list("share/") if k.endswith("/latest.json")]
    assert {k.split("/")[1] for k in pointers} == {"wujiang", "jiashan", "pinghu", "jinshan"}
    for key in pointers:
        latest = json.loads(lake.get_bytes(key))
        prefix = key.rsplit("/", 1)[0] + f"/{latest['snapshot_id']}/"
        manifest = verify_snapshot(lake, prefix, public)  # signature and every file's sha256
        assert manifest["rows"] == sum(f["rows"] for f in manifest["files"])
        assert manifest["agreement"]["version"] and manifest["source"]["batch_ids"]
