"""The lake's Parquet is encrypted under the lake key: quarantine with pyarrow's wrapped keys (our KMS client),
raw files with the raw-zone key DuckDB is given per session. Fast: a store on a temporary folder, no demo."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pingan.core.lake_crypto import LakeCrypto
from pingan.core.storage import Store

ROWS = pa.table(
    {"rule": ["quality:caller_phone_valid"], "value": ["1391234567"], "record": ['{"tel": "1391234567"}']}
)
QUARANTINE = "quarantine/incident/jurisdiction=310118/load_date=2025-03-01/feed=f/batch=b/part-00000.parquet"
RAW = "raw/incident/jurisdiction=310118/load_date=2025-03-01/feed=f/batch=b/part-00000.parquet"


def written_sealed(lake: Store, root, key: str):
    """Write ROWS at `key` through the store; check the file is 0600, holds no phone digits, reads back
    through the store and not without a key. Returns its path."""
    lake.write_parquet(key, ROWS)
    path = root / key
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"1391234567" not in path.read_bytes()
    assert lake.read_parquet(key).equals(ROWS)
    with pytest.raises(OSError, match="encrypted"):
        pq.read_table(path)
    return path


def test_quarantine_is_encrypted_0600_and_readable_only_with_the_lake_key(tmp_path):
    key = b"\x11" * 32
    lake = Store(f"file://{tmp_path}", crypto=lambda: LakeCrypto(key))
    path = written_sealed(lake, tmp_path, QUARANTINE)
    with pytest.raises(OSError):
        pq.read_table(path, decryption_properties=LakeCrypto(b"\x22" * 32).decryption_properties())
    with pytest.raises(duckdb.Error):
        duckdb.connect().sql(f"select * from read_parquet('{path}')").fetchall()


def test_raw_files_are_encrypted_and_read_by_duckdb_only_with_the_raw_zone_key(tmp_path):
    lake = Store(f"file://{tmp_path}", crypto=lambda: LakeCrypto(b"\x11" * 32))
    path = written_sealed(lake, tmp_path, RAW)
    with pytest.raises(duckdb.Error, match="encrypted"):
        duckdb.connect().sql(f"select * from read_parquet('{path}')").fetchall()
    keyless = duckdb.connect()  # the view's scan, without the key in the session
    with pytest.raises(duckdb.Error):
        keyless.sql(f"select * from {lake.duckdb_scan([str(path)])}").fetchall()
    wrong = duckdb.connect()
    Store(f"file://{tmp_path}", crypto=lambda: LakeCrypto(b"\x22" * 32)).duckdb_add_raw_key(wrong)
    with pytest.raises(duckdb.Error):
        wrong.sql(f"select * from {lake.duckdb_scan([str(path)])}").fetchall()

    con = duckdb.connect()
    lake.duckdb_add_raw_key(con)
    assert con.sql(f"select value from {lake.duckdb_scan([str(path)])}").fetchall() == [("1391234567",)]
    # the lake key is not the key DuckDB gets: a leaked DuckDB key opens no quarantine file
    assert LakeCrypto(b"\x11" * 32).raw_file_key != b"\x11" * 32


def test_raw_files_from_before_encryption_read_beside_encrypted_ones(tmp_path):
    old = "raw/incident/jurisdiction=310118/load_date=2025-02-28/feed=f/batch=a/part-00000.parquet"
    Store(f"file://{tmp_path}").write_parquet(old, ROWS)  # an unencrypted lake's file
    lake = Store(f"file://{tmp_path}", crypto=lambda: LakeCrypto(b"\x11" * 32))
    lake.write_parquet(RAW, ROWS)
    uris = [lake.uri(old), lake.uri(RAW)]
    assert [lake.parquet_is_encrypted(u) for u in uris] == [False, True]
    assert lake.read_parquet([old, RAW]).num_rows == 2
    con = duckdb.connect()
    lake.duckdb_add_raw_key(con)
    assert con.sql(f"select count(*) from {lake.duckdb_scan(uris, 'union_by_name = true')}").fetchone() == (
        2,
    )


def test_the_build_reads_encrypted_raw_files_into_pseudonymised_tables_and_keeps_no_key(tmp_path):
    """raw.<entity> is filled from the decrypted files with pseudonyms; no key is in the database file."""
    from pingan.core.pseudonym import pseudonym, register_pseudonym_functions
    from pingan.warehouse.build import create_raw_views

    crypto = LakeCrypto(b"\x11" * 32)
    lake = Store(f"file://{tmp_path}/lake", crypto=lambda: crypto)
    older = RAW.replace("batch=b", "batch=a")
    lake.write_parquet(RAW, pa.table({"record_id": ["310118:1"], "caller_phone": ["13912345678"]}))
    lake.write_parquet(older, pa.table({"record_id": ["310118:2"]}))  # a file without the column
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        register_pseudonym_functions(con, b"h" * 32)
        create_raw_views(con, {"incident": [lake.uri(RAW), lake.uri(older)]}, lake)
        rows = con.sql("select record_id, caller_phone from raw.incident order by 1").fetchall()
        assert rows == [("310118:1", pseudonym(b"h" * 32, "13912345678")), ("310118:2", None)]
        create_raw_views(con, {}, lake)  # the next night: nothing pending, the table becomes an empty view
        assert con.sql("select count(*) from raw.incident").fetchone() == (0,)
        con.execute("CHECKPOINT")
    stored = db.read_bytes()
    assert b"13912345678" not in stored
    assert crypto.raw_file_key not in stored and crypto.master_key not in stored
