"""The same dbt models on Spark: a demo raw zone built on a local SparkSession equals the DuckDB build.

The DuckDB warehouse is built the nightly way (one incremental build per day); the Spark one from the
whole lake at once. Every mart must hold the same rows (tests/spark_marts.py compares them).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from spark_marts import (
    MART_SCHEMA,
    duckdb_marts,
    ingest_and_build_nightly,
    mart_differences,
    simulated_settings,
    spark_tables,
)

from pingan import raw_zone
from pingan.core.storage import lake_store
from pingan.warehouse.spark import build_on_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]

START = date(2025, 3, 1)
DAYS = 2


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(DuckDB warehouse file, Spark warehouse directory) built from the same simulated lake."""
    with pytest.MonkeyPatch.context() as mp:
        settings = simulated_settings(tmp_path_factory.mktemp("spark-home"), mp)
        end = ingest_and_build_nightly(settings, START, DAYS, scale=0.1)
        lake = lake_store(settings)
        result = build_on_spark(settings, raw_zone.committed_batches(lake), lake=lake, build_date=end)
        assert result.mart_rows, "the Spark build made no marts"
        return settings.warehouse_path, result.warehouse_dir


def test_spark_builds_every_mart_of_the_duckdb_warehouse(built):
    duck_path, spark_dir = built
    marts = duckdb_marts(duck_path)
    assert {"fct_incidents", "mart_incident_trends", "mart_feed_freshness"} <= set(marts)
    assert spark_tables(spark_dir) == set(marts)


def test_every_mart_has_the_same_rows_and_values_on_both_engines(built):
    duck_path, spark_dir = built
    with duckdb.connect(str(duck_path), read_only=True) as con:
        assert con.execute(f"select count(*) from {MART_SCHEMA}.fct_incidents").fetchone()[0] > 100
    problems = mart_differences(duck_path, spark_dir)
    assert not problems, "\n".join(problems)
