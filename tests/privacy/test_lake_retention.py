"""Retention of raw personal data in the lake: past its entity's period, raw values become their pseudonyms,
quarantined values and GX samples go, counts and facts stay (fast tests on a temporary store; one slow one on
the demo with a full refresh after retention)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pii_detector import raw_scan

from pingan import raw_zone
from pingan.core import audit
from pingan.core.lake_crypto import LakeCrypto
from pingan.core.pseudonym import pseudonym
from pingan.core.storage import Store
from pingan.ops.erasure_lake import ErasureBlocked
from pingan.ops.retention_lake import apply_lake_retention, untreated_past
from pingan.quality.results_store import validation_key
from pingan.raw_zone import retention
from pingan.raw_zone.manifest import BatchFiles, Manifest

BIN = Path(sys.executable).parent
HUB = b"h" * 32
PHONE, ID, OTHER_ID = "13957120836", "31011819860412305X", "310118198604123051"
DAY = date(2025, 3, 1)


def _committed_incidents(lake: Store) -> Manifest:
    prefix = raw_zone.batch_prefix("raw", "incident", "310118", DAY, "qingpu_110", "b1")
    qprefix = raw_zone.batch_prefix("quarantine", "incident", "310118", DAY, "qingpu_110", "b1")
    raw = pa.table(
        {
            "record_id": ["a", "b"],
            "caller_phone": [PHONE, None],
            "involved_id_numbers": [f"{ID};{OTHER_ID}", None],
            "category": ["fire", "theft"],
        }
    )
    lake.write_parquet(prefix + "part-00000.parquet", raw)
    quarantine = pa.table(
        {"rule": ["quality:caller_phone_valid"], "value": ["1395712083"], "record": ['{"t": 1}']}
    )
    lake.write_parquet(qprefix + "part-00000.parquet", quarantine)
    sample = {"results": [{"result": {"element_count": 2, "partial_unexpected_list": ["1395****836"]}}]}
    lake.put_bytes(validation_key("qingpu_110", "b1", 0), json.dumps(sample).encode())
    manifest = Manifest(
        feed="qingpu_110", entity="incident", jurisdiction_code="310118", load_date=DAY,
        batch_id="b1", status="committed", rows_read=3, rows_written=2, rows_quarantined=1,
        files=BatchFiles(raw=[prefix + "part-00000.parquet"], quarantine=[qprefix + "part-00000.parquet"]),
    )  # fmt: skip
    raw_zone.commit(lake, manifest)
    return manifest


def _lake(tmp_path: Path) -> Store:
    return Store(f"file://{tmp_path}/lake", crypto=lambda: LakeCrypto(b"\x11" * 32))


def test_nothing_changes_within_the_retention_period(tmp_path: Path):
    lake, audit_store = _lake(tmp_path), Store(f"file://{tmp_path}/shares")
    old = _committed_incidents(lake)
    counts = apply_lake_retention(lake, HUB, audit_store, date(2025, 8, 27))  # day 179
    assert sum(counts.batches.values()) == 0 and counts.quarantine_rows == 0
    assert raw_zone.committed_manifest_record(lake, "qingpu_110", DAY).files == old.files


def test_past_retention_raw_values_become_their_pseudonyms_and_samples_go(tmp_path: Path):
    lake, audit_store = _lake(tmp_path), Store(f"file://{tmp_path}/shares")
    old = _committed_incidents(lake)
    counts = apply_lake_retention(lake, HUB, audit_store, date(2025, 8, 28))  # day 180
    assert counts.batches == {"incident": 1}
    assert counts.values == {"incident.caller_phone": 1, "incident.involved_id_numbers": 1}
    assert counts.quarantine_rows == 1 and counts.validations == 1

    new = raw_zone.committed_manifest_record(lake, "qingpu_110", DAY)
    assert new.batch_id == "b1" and new.rows_written == 2 and not lake.exists(old.files.raw[0])
    raw = lake.read_parquet(new.files.raw)
    assert raw["caller_phone"].to_pylist() == [pseudonym(HUB, PHONE), None]
    assert raw["involved_id_numbers"].to_pylist() == [
        f"{pseudonym(HUB, ID)};{pseudonym(HUB, OTHER_ID)}",
        None,
    ]
    assert raw["category"].to_pylist() == ["fire", "theft"]  # what is not personal data stays
    quarantine = lake.read_parquet(new.files.quarantine)
    assert quarantine["rule"].to_pylist() == ["quality:caller_phone_valid"]
    assert quarantine["value"].to_pylist() == [None] and quarantine["record"].to_pylist() == [None]
    sample = json.loads(lake.get_bytes(validation_key("qingpu_110", "b1", 0)))
    assert sample["results"][0]["result"] == {"element_count": 2}
    for key in new.files.raw + new.files.quarantine:  # still encrypted, still 0600
        path = tmp_path / "lake" / key
        assert lake.parquet_is_encrypted(str(path)) and path.stat().st_mode & 0o777 == 0o600

    entry = [e for e in audit.entries(audit_store) if e["event"] == "personal_data_retention"][-1]
    text = json.dumps(entry, ensure_ascii=False)
    assert '"tier": "lake"' in text and '"incident": 1' in text and PHONE not in text and ID not in text

    again = apply_lake_retention(lake, HUB, audit_store, date(2025, 8, 28))  # idempotent
    assert (
        sum(again.batches.values()) == 0
        and raw_zone.committed_manifest_record(lake, "qingpu_110", DAY) == new
    )


def test_a_treated_day_is_not_read_again_until_it_is_committed_again(tmp_path: Path):
    """The night's retention reads only the days it has not treated: its cost is tonight's expiries."""
    lake, audit_store = _lake(tmp_path), Store(f"file://{tmp_path}/shares")
    _committed_incidents(lake)
    as_of = date(2025, 8, 28)  # day 180
    assert [m.batch_id for m in untreated_past(lake, as_of)] == ["b1"]
    apply_lake_retention(lake, HUB, audit_store, as_of)
    assert list(untreated_past(lake, as_of)) == []  # treated: marked, never decrypted again
    assert list(untreated_past(lake, date(2026, 8, 28))) == []
    _committed_incidents(lake)  # a rerun of the day commits raw values again: the marker goes
    assert [m.batch_id for m in untreated_past(lake, as_of)] == ["b1"]
    again = apply_lake_retention(lake, HUB, audit_store, as_of)
    assert again.batches == {"incident": 1}


def test_retention_waits_for_a_build_reading_the_lake(tmp_path: Path):
    lake = _lake(tmp_path)
    _committed_incidents(lake)
    with retention.build_lease(lake, ["b1"]), pytest.raises(ErasureBlocked, match="reading the lake"):
        apply_lake_retention(lake, HUB, Store(f"file://{tmp_path}/shares"), date(2026, 1, 1))


@pytest.mark.slow
def test_a_full_refresh_after_lake_retention_builds_the_same_facts(demo_home: Path, tmp_path: Path):
    """The demo's incidents (2025-03-01/02) are past 180 days on 2025-08-30: the lake then holds no raw phone
    or ID number of them, and a full refresh still gives every incident the same caller pseudonym."""
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    con, source = raw_scan(home / "lake", "incident")
    phones = {
        r[0]
        for r in con.execute(f"select caller_phone from {source} where caller_phone is not null").fetchall()
    }
    assert len(phones) > 100
    before = _caller_pseudonyms(home)
    env = {**os.environ, "PINGAN_HOME": str(home)}
    for args in (["retention", "--date", "2025-08-30"], ["build", "--full-refresh"]):
        run = subprocess.run(
            [str(BIN / "pingan"), *args], env=env, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    con, source = raw_scan(home / "lake", "incident")
    held = {
        r[0]
        for r in con.execute(f"select caller_phone from {source} where caller_phone is not null").fetchall()
    }
    assert held and not held & phones and all(v.startswith("ps_") for v in held)
    assert _caller_pseudonyms(home) == before


def _caller_pseudonyms(home: Path) -> dict[str, str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return dict(con.execute("select record_id, caller_phone from fct_incidents").fetchall())
