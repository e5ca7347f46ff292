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
