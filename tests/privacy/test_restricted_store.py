"""The restricted tier: raw values only in an encrypted 0600 DuckDB file, read only through an audited lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from pii_detector import raw_scan

from pingan.core.pseudonym import pseudonym, read_key_file

BIN = Path(sys.executable).parent


def _pingan(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PINGAN_HOME": str(home)}
    return subprocess.run([str(BIN / "pingan"), *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_restricted_store_is_encrypted_and_private(demo_home: Path):
    path = demo_home / "restricted.duckdb"
    assert path.stat().st_mode & 0o777 == 0o600
    con = duckdb.connect()
    with pytest.raises(duckdb.Error, match="encrypted"):
        con.execute(f"ATTACH '{path}' AS r (READ_ONLY)")
    with pytest.raises(duckdb.Error):
        con.execute(f"ATTACH '{path}' AS r2 (ENCRYPTION_KEY '{'00' * 32}', READ_ONLY)")
    # no raw digits of any phone in the file's bytes either
    lake_phone = _one_raw_phone(demo_home)
    assert lake_phone.encode() not in path.read_bytes()


@pytest.mark.slow
def test_lookup_returns_the_raw_value_and_audits_who_why_and_keys_never_the_value(demo_home: Path):
    phone = _one_raw_phone(demo_home)
    ps = pseudonym(read_key_file(demo_home / "secrets" / "hub.key"), phone)
    wh = duckdb.connect(str(demo_home / "warehouse.duckdb"), read_only=True)
    expected = {
        r[0]
        for r in wh.execute("select record_id from fct_incidents where caller_phone = ?", [ps]).fetchall()
    }
    assert expected  # the analyst sees the pseudonym, not the phone

    run = _pingan(demo_home, "restricted", "lookup", "--pseudonym", ps, "--case", "QP-2025-17",
                  "--reason", "caller follow-up", "--analyst", "analyst7", "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert {r["value"] for r in rows if r["column_name"] == "caller_phone"} == {phone}
    assert expected <= {r["record_id"] for r in rows}

    log = sorted((demo_home / "shares" / "audit" / "log").glob("*.json"))
    entry = json.loads(log[-1].read_text())
    assert entry["event"] == "restricted_lookup"
    assert entry["detail"]["analyst"] == "analyst7" and entry["detail"]["case"] == "QP-2025-17"
    assert entry["detail"]["pseudonyms"] == [ps] and entry["detail"]["rows"] == len(rows)
    assert phone not in log[-1].read_text()


@pytest.mark.slow
def test_lookup_without_a_case_is_refused(demo_home: Path):
    run = _pingan(demo_home, "restricted", "lookup", "--pseudonym", "ps_x", "--case", " ", "--reason", "r")
    assert run.returncode == 1 and "case number" in run.stdout + run.stderr


def _one_raw_phone(home: Path) -> str:
    con, source = raw_scan(home / "lake", "incident")
    return con.sql(
        f"select caller_phone from {source} where caller_phone is not null"
        " group by 1 order by count(*) desc, 1 limit 1"
    ).fetchone()[0]


@pytest.mark.slow
def test_a_night_adds_only_new_batches_and_drops_the_gone(demo_home: Path, tmp_path: Path):
    """The store follows the committed batches without decrypting the ones it already holds."""
    import shutil

    from pingan.core.settings import load_settings
    from pingan.core.storage import lake_store
    from pingan.raw_zone import committed_batches
    from pingan.warehouse.restricted import ALIAS, TABLE, attach, build_restricted, restricted_key

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    settings = load_settings({"PINGAN_HOME": str(home)})
    lake = lake_store(settings)
    batches = committed_batches(lake)
    as_of = max(b.load_date for b in batches)
    held = build_restricted(settings, batches, lake, as_of=as_of)
    incidents = [b for b in batches if b.entity == "incident"]
    gone, kept = incidents[0], incidents[1]

    def batch_rows(batch_id: str) -> int:
        con = duckdb.connect()
        attach(con, home / "restricted.duckdb", restricted_key(settings))
        return con.execute(f"select count(*) from {ALIAS}.{TABLE} where batch_id = ?", [batch_id]).fetchone()[
            0
        ]

    assert batch_rows(gone.batch_id) > 0
    fewer = build_restricted(settings, [b for b in batches if b is not gone], lake, as_of=as_of)
    assert batch_rows(gone.batch_id) == 0 and fewer < held  # a withdrawn batch's values leave the store
    for uri in kept.files:  # a batch it holds is never read again: its files could be gone
        (home / "lake" / lake.key_of(uri)).unlink()
    assert build_restricted(settings, batches, lake, as_of=as_of) == held  # only `gone` was read again
    assert batch_rows(kept.batch_id) > 0
    with pytest.raises(OSError):  # a full rebuild reads every batch (here: a missing file fails it)
        build_restricted(settings, batches, lake, as_of=as_of, full=True)


@pytest.mark.slow
def test_a_rotated_key_rebuilds_the_store_under_it(demo_home: Path, tmp_path: Path):
    """A new restricted key (the old file does not open) or a new hub key (every pseudonym changes): the
    night rebuilds the store instead of failing or keeping stale pseudonyms."""
    import shutil

    from pingan.core.settings import load_settings
    from pingan.core.storage import lake_store
    from pingan.raw_zone import committed_batches
    from pingan.warehouse.restricted import ALIAS, TABLE, attach, build_restricted, restricted_key

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    settings = load_settings({"PINGAN_HOME": str(home)})
    lake = lake_store(settings)
    batches = committed_batches(lake)
    phone = _one_raw_phone(home)
    for secret in ("restricted.key", "hub.key"):
        (home / "secrets" / secret).write_text("ab" * 32)
        assert build_restricted(settings, batches, lake) > 0
        con = duckdb.connect()
        attach(con, home / "restricted.duckdb", restricted_key(settings))
        found = {r[0] for r in con.execute(
            f"select pseudonym from {ALIAS}.{TABLE} where value = ?", [phone]).fetchall()}  # fmt: skip
        hub = (home / "secrets" / "hub.key").read_text().strip()
        assert found == {pseudonym(bytes.fromhex(hub), phone)}  # opens with the new key, current pseudonyms


_WRITE_ON_A_FRESH_MACHINE = """
import sys
from pathlib import Path
import duckdb
from pingan.warehouse import restricted
path, key = Path(sys.argv[1]), "ab" * 32
con = duckdb.connect()
restricted.attach(con, path, key, read_only=False)
con.execute("CREATE TABLE restricted.t AS SELECT 42 AS v")
con.execute("DETACH restricted")
restricted.attach(con, path, key)
print(con.execute("SELECT v FROM restricted.t").fetchone()[0])
"""


def test_the_store_is_written_on_a_machine_whose_duckdb_extension_directory_is_empty(tmp_path: Path):
    """A fresh machine: DuckDB has only its read-only crypto module until httpfs is loaded, and refused to
    write the encrypted store (the first `make demo` failed at the restricted tier)."""
    home = tmp_path / "home"  # DuckDB's extension directory is under $HOME: here an empty one
    home.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", _WRITE_ON_A_FRESH_MACHINE, str(tmp_path / "store.duckdb")],
        env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "42"
    with pytest.raises(duckdb.Error, match="encrypted"):  # written encrypted, not in the clear
        duckdb.connect().execute(f"ATTACH '{tmp_path / 'store.duckdb'}' AS r (READ_ONLY)")
