"""The Spark build's raw tables carry the same keyed pseudonyms as the DuckDB raw views."""

from __future__ import annotations

from pathlib import Path

import pytest

from pingan.core.pseudonym import pseudonym, pseudonym_list

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_raw_frames_are_pseudonymised_like_duckdb(tmp_path: Path):
    pytest.importorskip("pyspark")
    from pingan.warehouse.spark import pseudonymised, spark_session

    key = b"k" * 32
    ids = "310118198506150019;310118198506150027"
    with spark_session(tmp_path / "wh") as spark:
        frame = spark.createDataFrame(
            [("1", "13912345678", ids, "某路1号"), ("2", None, None, None)],
            "record_id string, caller_phone string, involved_id_numbers string, address string",
        )
        rows = {r.record_id: r for r in pseudonymised(frame, "incident", key).collect()}
    assert rows["1"].caller_phone == pseudonym(key, "13912345678")
    assert rows["1"].involved_id_numbers == pseudonym_list(key, ids)
    assert rows["1"].address == pseudonym(key, "某路1号")
    assert (rows["2"].caller_phone, rows["2"].involved_id_numbers) == (None, None)


def test_spark_reads_encrypted_raw_files_decrypted_by_the_driver_beside_plain_ones(tmp_path: Path):
    """Spark reads Parquet through Hadoop, without our lake key: encrypted raw files reach it as rows pyarrow
    decrypted (pingan.warehouse.spark.register_raw_zone), plain ones (from before encryption) as files."""
    pytest.importorskip("pyspark")
    import pyarrow as pa

    from pingan.core.canonical import entity_schema
    from pingan.core.lake_crypto import LakeCrypto
    from pingan.core.storage import Store
    from pingan.warehouse.spark import _entity_frame, spark_session

    lake = Store(f"file://{tmp_path}/lake", crypto=lambda: LakeCrypto(b"\x11" * 32))
    sealed, plain = "raw/incident/b=1/part-0.parquet", "raw/incident/b=0/part-0.parquet"
    lake.write_parquet(sealed, pa.table({"record_id": ["310118:1"], "caller_phone": ["13912345678"]}))
    Store(f"file://{tmp_path}/lake").write_parquet(plain, pa.table({"record_id": ["310118:0"]}))
    assert lake.parquet_is_encrypted(lake.uri(sealed)) and not lake.parquet_is_encrypted(lake.uri(plain))
    with spark_session(tmp_path / "wh") as spark:
        frame = _entity_frame(spark, "incident", [lake.uri(plain)], lake.read_parquet(sealed))
        assert frame.columns == entity_schema("incident").names
        rows = {r.record_id: r.caller_phone for r in frame.collect()}
    assert rows == {"310118:0": None, "310118:1": "13912345678"}
