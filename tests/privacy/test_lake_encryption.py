"""Quarantine files are encrypted under the lake key (Parquet modular encryption, our KMS client); raw files
are not yet (the warehouse reads them with DuckDB). Fast: a store on a temporary folder, no demo."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pingan.core.lake_crypto import LakeCrypto, lake_crypto
from pingan.core.settings import load_settings
from pingan.core.storage import Store, lake_store

ROWS = pa.table(
    {"rule": ["quality:caller_phone_valid"], "value": ["1391234567"], "record": ['{"tel": "1391234567"}']}
)
QUARANTINE = "quarantine/incident/jurisdiction=310118/load_date=2025-03-01/feed=f/batch=b/part-00000.parquet"
RAW = "raw/incident/jurisdiction=310118/load_date=2025-03-01/feed=f/batch=b/part-00000.parquet"


def test_quarantine_is_encrypted_0600_and_readable_only_with_the_lake_key(tmp_path):
    key = b"\x11" * 32
    lake = Store(f"file://{tmp_path}", crypto=lambda: LakeCrypto(key))
    lake.write_parquet(QUARANTINE, ROWS)
    path = tmp_path / QUARANTINE
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"1391234567" not in path.read_bytes()
    assert lake.read_parquet(QUARANTINE).equals(ROWS)
    with pytest.raises(OSError, match="encrypted"):
        pq.read_table(path)
    with pytest.raises(OSError):
        pq.read_table(path, decryption_properties=LakeCrypto(b"\x22" * 32).decryption_properties())
    with pytest.raises(duckdb.Error):
        duckdb.connect().sql(f"select * from read_parquet('{path}')").fetchall()

    lake.write_parquet(RAW, ROWS)  # raw files stay readable by DuckDB (the warehouse build)
    assert duckdb.connect().sql(f"select count(*) from read_parquet('{tmp_path / RAW}')").fetchone()[0] == 1


def test_the_lake_key_comes_from_the_deployment_never_the_lake(tmp_path, monkeypatch):
    monkeypatch.delenv("PINGAN_LAKE_KEY", raising=False)
    settings = load_settings({"PINGAN_HOME": str(tmp_path)})
    lake = lake_store(settings)
    lake.write_parquet(QUARANTINE, ROWS)
    key_file = tmp_path / "secrets" / "lake.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and not (tmp_path / "lake" / "secrets").exists()
    assert pq.read_table(
        tmp_path / "lake" / QUARANTINE, decryption_properties=lake_crypto(settings).decryption_properties()
    ).equals(ROWS)

    monkeypatch.setenv("PINGAN_LAKE_KEY", "ab" * 32)  # the environment wins (prod's secret store)
    assert lake_crypto(settings).master_key == b"\xab" * 32
    with pytest.raises(OSError):
        lake_store(settings).read_parquet(QUARANTINE)
