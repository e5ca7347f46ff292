"""What erasure and correction do to one value, one table and one committed lake batch (fast, no demo)."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pytest

from pingan import raw_zone
from pingan.core.storage import Store
from pingan.ops.erasure_lake import ErasureBlocked, change_lake
from pingan.ops.erasure_stores import change_warehouse
from pingan.ops.subject import ERASED, SubjectRequest, ValueChange, change_table
from pingan.raw_zone import retention
from pingan.raw_zone.manifest import BatchFiles, Manifest

PHONE, ID = "13957120836", "31011819860412305X"


def test_list_elements_are_dropped_or_replaced_whatever_their_spelling():
    erase = ValueChange({PHONE: None, ID: None})
    assert (
        erase.apply("31011819860412305x;110105194912310021", identifier_column=True) == "110105194912310021"
    )
    assert erase.apply(" 139-5712-0836 ", identifier_column=True) is None
    assert erase.apply("caller 13957120836 said", identifier_column=False) == f"caller {ERASED} said"
    correct = ValueChange({PHONE: "18621094477"})
    assert correct.apply(PHONE, identifier_column=True) == "18621094477"
    assert correct.apply('{"tel": "13957120836"}', identifier_column=False) == '{"tel": "18621094477"}'
    assert erase.apply("139571208361", identifier_column=True) == "139571208361"  # a longer number: not them


def test_erasing_an_id_number_erases_the_name_it_identifies_in_the_same_row():
    table = pa.table(
        {
            "legal_rep_id_number": [ID, "110105194912310021"],
            "legal_rep_name": ["张伟", "王建国"],
            "n": [1, 2],
        }
    )
    changed, rows = change_table(table, ValueChange({ID: None}), {"legal_rep_id_number"})
    assert rows == 1
    assert changed.to_pydict() == {
        "legal_rep_id_number": [None, "110105194912310021"],
        "legal_rep_name": [None, "王建国"],
        "n": [1, 2],
    }
    assert changed.schema == table.schema


def test_a_correction_must_change_one_identifier():
    from pingan.ops.erasure import SubjectRequestError, check_request

    with pytest.raises(SubjectRequestError, match="one identifier"):
        check_request(SubjectRequest("correct", {PHONE: "1", ID: "2"}, "r", "me"))
    with pytest.raises(SubjectRequestError, match="reason"):
        check_request(SubjectRequest("erase", {PHONE: None}, " ", "me"))
    assert SubjectRequest("erase", {PHONE: None}, "r", "me").reference(b"k" * 32)[0] not in PHONE


def _committed_batch(lake: Store) -> Manifest:
    prefix = raw_zone.batch_prefix("raw", "incident", "310118", date(2025, 3, 1), "qingpu_110", "b1")
    qprefix = raw_zone.batch_prefix("quarantine", "incident", "310118", date(2025, 3, 1), "qingpu_110", "b1")
    lake.write_parquet(
        prefix + "part-00000.parquet", pa.table({"record_id": ["a", "b"], "caller_phone": [PHONE, "x"]})
    )
    lake.write_parquet(qprefix + "part-00000.parquet", pa.table({"value": ["y"], "record": ['{"tel": "1"}']}))
    manifest = Manifest(
        feed="qingpu_110", entity="incident", jurisdiction_code="310118", load_date=date(2025, 3, 1),
        batch_id="b1", status="committed", rows_read=3, rows_written=2, rows_quarantined=1,
        files=BatchFiles(raw=[prefix + "part-00000.parquet"], quarantine=[qprefix + "part-00000.parquet"]),
    )  # fmt: skip
    raw_zone.commit(lake, manifest)
    return manifest


def test_a_committed_batch_is_recommitted_with_new_files_and_the_old_ones_deleted(tmp_path):
    lake = Store(f"file://{tmp_path}")
    old = _committed_batch(lake)
    counts = change_lake(lake, ValueChange({PHONE: None}))
    assert counts.rows["raw"] == 1 and counts.files == {"raw": 1} and counts.batches == 1
    new = raw_zone.committed_manifest_record(lake, "qingpu_110", date(2025, 3, 1))
    assert new.batch_id == "b1" and new.rows_written == 2 and new.files.quarantine == old.files.quarantine
    assert new.files.raw != old.files.raw and not lake.exists(old.files.raw[0])
    assert lake.read_parquet(new.files.raw).column("caller_phone").to_pylist() == [None, "x"]
    assert change_lake(lake, ValueChange({PHONE: None})).batches == 0  # idempotent


def test_the_lake_is_not_changed_under_a_running_build(tmp_path):
    lake = Store(f"file://{tmp_path}")
    _committed_batch(lake)
    with retention.build_lease(lake, ["b1"]), pytest.raises(ErasureBlocked, match="reading the lake"):
        change_lake(lake, ValueChange({PHONE: None}))


def test_an_erasure_gives_every_row_of_a_changed_fact_its_row_hash(tmp_path):
    # rows an incremental build kept from before the models had row_hash have none: the publication
    # compares row_hash, so an erased row must get one, or the change never reaches a share
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(f"""CREATE TABLE fct_things AS SELECT 'k' || i AS record_id,
                        CASE WHEN i = 3 THEN '{PHONE}' ELSE 'x' END AS note FROM range(5) t(i)""")
        con.execute("ALTER TABLE fct_things ADD COLUMN row_hash UBIGINT")
    assert change_warehouse(path, ValueChange({PHONE: None})) == 1
    with duckdb.connect(str(path), read_only=True) as con:
        stale = con.execute(
            "SELECT count(*) FROM fct_things WHERE row_hash IS DISTINCT FROM hash(record_id, note)"
        )
        assert stale.fetchone()[0] == 0
