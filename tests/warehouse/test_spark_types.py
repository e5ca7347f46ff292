"""Every column the build registers in `raw` has a Spark type: an empty table (a build before any batch of
an entity) is created on Spark from its Arrow schema alone (spark._empty_frame)."""

from __future__ import annotations

import duckdb

from pingan.warehouse.inputs import BatchPlan, register_batches
from pingan.warehouse.spark import spark_type


def test_raw_batches_of_an_empty_plan_map_to_spark_types():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    register_batches(con, BatchPlan(committed=(), added=(), removed={}))
    for table in ("batches", "batch_changes"):
        schema = con.sql(f"SELECT * FROM raw.{table}").arrow().schema
        types = {f.name: spark_type(f.type) for f in schema}
        assert all(types.values()), (table, types)
    assert types_of(con, "batches")["raw_keys"] == "array<string>"


def types_of(con, table: str) -> dict[str, str]:
    return {f.name: spark_type(f.type) for f in con.sql(f"SELECT * FROM raw.{table}").arrow().schema}
