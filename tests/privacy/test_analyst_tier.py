"""The analysts' warehouse holds no raw personal data (issue 18), found by a detector over every value."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest
from pii_detector import findings, known_personal_values, raw_scan

from pingan.core.pseudonym import PREFIX, hub_key_path, pseudonym, read_key_file

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_detector_finds_no_personal_data_in_any_table_or_view(demo_home: Path):
    known = known_personal_values(demo_home / "lake")
    assert len(known) > 500  # the sources did hold names, addresses, phones and ID numbers
    key_file = demo_home / "secrets" / "hub.key"
    assert key_file == hub_key_path_for(demo_home) and key_file.stat().st_mode & 0o777 == 0o600
    found = findings(demo_home / "warehouse.duckdb", known, read_key_file(key_file))
    assert found == {}


@pytest.mark.slow
def test_the_detector_sees_raw_values_in_the_lake_it_compares_with(demo_home: Path, tmp_path: Path):
    """The detector can fail: a copy of raw incidents put into a DuckDB file is found."""
    planted = tmp_path / "planted.duckdb"
    lake_con, source = raw_scan(demo_home / "lake", "incident")
    rows = lake_con.execute(f"select record_id, caller_phone, involved_id_numbers, address from {source}")
    with duckdb.connect(str(planted)) as con:
        con.register("leaked", rows.to_arrow_table())
        con.execute("create table leak as select * from leaked")
    found = findings(planted, known_personal_values(demo_home / "lake"), b"k" * 32)
    rules = {f.split(": ")[1].split(" (")[0] for f in found['"main"."leak"']}
    assert rules >= {"mobile", "resident_id", "person_name"}


@pytest.mark.slow
def test_caller_counts_are_the_same_on_pseudonyms(demo_home: Path):
    """Each raw phone has exactly one pseudonym and no two share one: distinct and repeat callers still count."""
    key = read_key_file(demo_home / "secrets" / "hub.key")
    lake_con, source = raw_scan(demo_home / "lake", "incident")
    raw = dict(lake_con.execute(f"select record_id, caller_phone from {source}").fetchall())
    con = duckdb.connect(str(demo_home / "warehouse.duckdb"), read_only=True)
    fct = dict(con.execute("select record_id, caller_phone from fct_incidents").fetchall())
    assert len(fct) > 500
    assert all(ps is None or ps.startswith(PREFIX) for ps in fct.values())
    assert {r: pseudonym(key, raw[r]) for r in fct} == fct
    pairs = {(raw[r], fct[r]) for r in fct if raw[r]}
    assert len({p for p, _ in pairs}) == len({q for _, q in pairs}) == len(pairs)


def hub_key_path_for(home: Path) -> Path:
    from pingan.core.settings import load_settings

    return hub_key_path(load_settings({"PINGAN_HOME": str(home)}))
