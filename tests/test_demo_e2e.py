"""End to end, as an operator runs it: `pingan demo` then the analyst's documented DuckDB query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pingan.cli.demo import ANALYST_QUERY
from pingan.core.storage import Store
from pingan.sharing.keys import signing_key
from pingan.sharing.manifest import MANIFEST, read_manifest, snapshot_files, verify_snapshot

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_demo_runs_every_stage_and_the_documented_query_answers(home: Path):
    env = {**os.environ, "PINGAN_HOME": str(home)}
    demo = subprocess.run(
        [str(BIN / "pingan"), "demo", "--days", "2", "--scale", "0.1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "duckdb -readonly" in demo.stdout and "fct_incidents" in demo.stdout

    # the exact query of the README, through the duckdb CLI installed with the project
    cli = subprocess.run(
        [str(BIN / "duckdb"), "-readonly", "-json", str(home / "warehouse.duckdb"), ANALYST_QUERY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    counts = {r["jurisdiction_code"]: r["incidents"] for r in json.loads(cli.stdout)}
    assert set(counts) == {"310118", "320509", "330421"} and min(counts.values()) > 50

    status = json.loads(
        subprocess.run(
            [str(BIN / "pingan"), "status", "--json"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    for feed, f in status["feeds"].items():
        assert f["days_committed"] == 2, (feed, f["batches"])
        for b in f["batches"]:
            assert b["rows_read"] == b["rows_written"] + b["rows_quarantined"]

    # the warehouse holds exactly what the lake committed, deduplicated
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    fct = con.sql("select count(*), count(distinct record_id) from fct_incidents").fetchone()
    assert fct[0] == fct[1] == sum(counts.values())
    assert con.sql("select count(*) from fct_incidents where category is null").fetchone()[0] == 0

    # every granted dataset of every partner: a verified snapshot behind its signed latest pointer
    from pingan.sharing.agreements import load_agreements
    from pingan.sharing.keys import public_key_id
    from pingan.sharing.manifest import LATEST, LATEST_SIGNATURE, dataset_prefix, verify_signed

    shares = Store(f"file://{home / 'shares'}")
    public = signing_key(home / "secrets", allow_generate=False).public_key()
    trusted = {public_key_id(public): public}
    for partner, agreement in load_agreements().items():
        for dataset in agreement.datasets:
            prefix = dataset_prefix(partner, dataset)
            latest = verify_signed(
                shares.get_bytes(prefix + LATEST),
                shares.get_bytes(prefix + LATEST_SIGNATURE),
                trusted,
                prefix,
            )
            manifest = verify_snapshot(
                shares.get_bytes,
                prefix + latest["manifest"],
                prefix,
                trusted,
                partner=partner,
                dataset=dataset,
            )  # signature and every file's sha256
            snapshot = prefix + latest["manifest"][: -len(MANIFEST)]
            files = snapshot_files(shares.get_bytes, snapshot, read_manifest(manifest, snapshot + MANIFEST))
            assert manifest["rows"] == sum(f.rows for f in files)
            assert manifest["agreement"]["version"]
    assert lake_has_no_shares(home)
    published = con.sql("select count(*) from audit.share_audit_log where event = 'published'").fetchone()[0]
    assert published >= sum(len(a.datasets) for a in load_agreements().values())


def lake_has_no_shares(home: Path) -> bool:
    return not (home / "lake" / "share").exists()
