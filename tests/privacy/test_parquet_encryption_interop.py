"""What DuckDB 1.5.5 reads of pyarrow's Parquet modular encryption (issue 18, encryption at rest of the lake).

Measured facts the lake's encryption has to be designed around:
- pyarrow's KMS scheme (CryptoFactory + KmsClient: random data keys wrapped by master keys in the file's key
  metadata) is not readable by DuckDB: DuckDB takes the key given to `PRAGMA add_parquet_key` as the footer
  key itself and ignores key metadata, so decryption fails the AES-GCM tag check even with the master key;
- a file pyarrow writes with a direct key (`create_encryption_properties`, uniform: footer and every column
  under one key) is readable by DuckDB given that key, and unreadable without it;
- but only while every column chunk is a single data page: from the second page on DuckDB 1.5.5 fails the
  AES tag check (so the lake writes raw files in row groups of one page per column chunk).
"""

from __future__ import annotations

import base64
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
import pytest

MASTER = {"footer": b"0123456789abcdef", "pii": b"fedcba9876543210"}
TABLE = pa.table({"record_id": ["310118:1"], "caller_phone": ["13912345678"]})


class XorKms(pe.KmsClient):
    """A test KMS: wraps data keys by XOR with the master key (the scheme under test is pyarrow's envelope)."""

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        return base64.b64encode(
            bytes(a ^ b for a, b in zip(key_bytes, MASTER[master_key_identifier], strict=True))
        ).decode()

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        data = base64.b64decode(wrapped_key)
        return bytes(a ^ b for a, b in zip(data, MASTER[master_key_identifier], strict=True))


def _duckdb_read(path: Path, key: bytes) -> list[tuple]:
    con = duckdb.connect()
    con.execute(f"PRAGMA add_parquet_key('k', '{key.decode()}')")
    return con.execute(
        f"select * from read_parquet('{path}', encryption_config = {{footer_key: 'k'}})"
    ).fetchall()


def test_duckdb_cannot_read_pyarrow_envelope_encrypted_columns(tmp_path: Path):
    path = tmp_path / "envelope.parquet"
    config = pe.EncryptionConfiguration(
        footer_key="footer", column_keys={"pii": ["caller_phone"]}, double_wrapping=False
    )
    props = pe.CryptoFactory(lambda _c: XorKms()).file_encryption_properties(pe.KmsConnectionConfig(), config)
    pq.write_table(TABLE, path, encryption_properties=props)
    with pytest.raises(duckdb.InvalidInputException, match="AES tag"):
        _duckdb_read(path, MASTER["footer"])


def test_duckdb_reads_pyarrow_direct_key_files_and_nothing_without_the_key(tmp_path: Path):
    path = tmp_path / "direct.parquet"
    key = b"0123456789abcdef"
    pq.write_table(TABLE, path, encryption_properties=pe.create_encryption_properties(key))
    assert _duckdb_read(path, key) == [("310118:1", "13912345678")]
    assert b"13912345678" not in path.read_bytes()
    with pytest.raises(duckdb.InvalidInputException, match="encrypted"):
        duckdb.sql(f"select * from read_parquet('{path}')").fetchall()
    with pytest.raises(duckdb.InvalidInputException):
        _duckdb_read(path, b"fedcba9876543210")


def test_duckdb_reads_an_encrypted_column_chunk_only_when_it_is_one_page(tmp_path: Path):
    """DuckDB 1.5.5 fails the AES tag check from a column chunk's second data page on; the lake's raw files
    are written one page per chunk (pingan.core.storage.OnePagePerChunkWriter), and read back whole."""
    from pingan.core.lake_crypto import LakeCrypto
    from pingan.core.storage import Store

    key = b"0123456789abcdef"
    rows = pa.table({"n": list(range(30_000)), "caller_phone": [f"139{i:08d}" for i in range(30_000)]})
    two_pages = tmp_path / "two_pages.parquet"
    props = pe.create_encryption_properties(key)
    pq.write_table(rows, two_pages, encryption_properties=props, max_rows_per_page=20_000)
    with pytest.raises(duckdb.InvalidInputException, match="AES tag"):
        _duckdb_sum(two_pages, key)

    lake = Store(f"file://{tmp_path}", crypto=lambda: LakeCrypto(b"\x11" * 32))
    raw = "raw/incident/part-00000.parquet"
    with lake.parquet_writer(raw, rows.schema) as writer:
        writer.write_table(rows)
    raw_key = base64.b64encode(LakeCrypto(b"\x11" * 32).raw_file_key)
    assert _duckdb_sum(tmp_path / raw, raw_key) == (sum(range(30_000)), 30_000)


def _duckdb_sum(path: Path, key: bytes) -> tuple:
    con = duckdb.connect()
    con.execute(f"PRAGMA add_parquet_key('k', '{key.decode()}')")
    scan = f"read_parquet('{path}', encryption_config = {{footer_key: 'k'}})"
    return con.execute(f"select sum(n), count(distinct caller_phone) from {scan}").fetchone()


def test_duckdb_fails_a_filter_pushed_into_a_pyarrow_encrypted_scan_and_offset_0_keeps_it_out(tmp_path: Path):
    """Another DuckDB 1.5.5 limit: a filter pushed into the scan fails the AES tag check (files DuckDB wrote
    itself read fine); pingan.core.lake_crypto.duckdb_parquet_scan puts `OFFSET 0` between them."""
    from pingan.core.lake_crypto import duckdb_parquet_scan

    key = b"0123456789abcdef"
    path = tmp_path / "direct.parquet"
    pq.write_table(TABLE, path, encryption_properties=pe.create_encryption_properties(key))
    con = duckdb.connect()
    con.execute(f"PRAGMA add_parquet_key('pingan_lake', '{key.decode()}')")
    pushed = f"read_parquet('{path}', encryption_config = {{footer_key: 'pingan_lake'}})"
    with pytest.raises(duckdb.InvalidInputException, match="AES tag"):
        con.execute(f"select record_id from {pushed} where caller_phone <> ''").fetchall()
    scan = duckdb_parquet_scan([str(path)], [])
    assert con.execute(f"select record_id from {scan} where caller_phone <> ''").fetchall() == [("310118:1",)]
