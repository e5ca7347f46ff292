"""The same dbt models on Spark: a demo raw zone built on a local SparkSession equals the DuckDB build.

The DuckDB warehouse is built the nightly way (one incremental build per day); the Spark one from the
whole lake at once. Every mart must hold the same rows: same row counts, and the same values in every
column, numbers compared after rounding (KPIs such as percentiles are floating point on both engines).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pingan import raw_zone
from pingan.core.storage import Store, lake_store
from pingan.orchestration.pipeline import build_warehouse, ingest_day, sources_for
from pingan.warehouse.spark import MART_SCHEMA, build_on_spark
from pingan_sim import simulate

pytestmark = [pytest.mark.slow, pytest.mark.spark]

START = date(2025, 3, 1)
DAYS = 2
NUMERIC = ("DOUBLE", "FLOAT", "DECIMAL", "REAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(DuckDB warehouse file, Spark warehouse directory) built from the same simulated lake."""
    from pingan.core.settings import load_settings

    home = tmp_path_factory.mktemp("spark-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PINGAN_HOME", str(home))
        for var in ("PINGAN_LAKE_URL", "PINGAN_LANDING_URL", "PINGAN_WAREHOUSE", "PINGAN_S3_ENDPOINT"):
            mp.delenv(var, raising=False)
        settings = load_settings()
        landing = Store(settings.landing_url)
        landing.ensure()
        end = START + timedelta(days=DAYS - 1)
        simulate(settings.home, landing, START, end, seed=7, scale=0.1, defect_rate=0.01)
        day = START
        while day <= end:
            with sources_for(settings):
                outcomes = ingest_day(settings, day)
            assert all(o.status == "committed" for o in outcomes), [
                (o.feed, o.status, o.error) for o in outcomes
            ]
            build_warehouse(settings, build_date=day)  # incremental, as the nightly job does
            day += timedelta(days=1)
        lake = lake_store(settings)
        result = build_on_spark(settings, raw_zone.committed_batches(lake), lake=lake, build_date=end)
        assert result.mart_rows, "the Spark build made no marts"
        return settings.warehouse_path, result.warehouse_dir


def duckdb_marts(path: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "join information_schema.tables using (table_schema, table_name) "
            "where table_schema = ? and table_type = 'BASE TABLE' order by table_name, ordinal_position",
            [MART_SCHEMA],
        ).fetchall()
    marts: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        marts.setdefault(table, []).append((column, dtype))
    return marts


def normalised(column: str, dtype: str) -> str:
    """A value both engines write the same way: numbers as doubles rounded to 6 places."""
    quoted = f'"{column}"'
    if dtype.upper().startswith(NUMERIC):
        return f"round(cast({quoted} as double), 6) as {quoted}"
    return quoted


def test_spark_builds_every_mart_of_the_duckdb_warehouse(built):
    duck_path, spark_dir = built
    marts = duckdb_marts(duck_path)
    assert {"fct_incidents", "mart_incident_trends", "mart_feed_freshness"} <= set(marts)
    spark_tables = {p.name for p in (spark_dir / f"{MART_SCHEMA}.db").iterdir() if p.is_dir()}
    assert spark_tables == set(marts)


def mismatches(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], spark_dir: Path
) -> list[str]:
    files = [str(f) for f in sorted((spark_dir / f"{MART_SCHEMA}.db" / table).glob("*.parquet"))]
    select = ", ".join(normalised(c, t) for c, t in columns)
    duck_sql = f"select {select} from duck.{MART_SCHEMA}.{table}"
    duck_rows = con.execute(f"select count(*) from ({duck_sql})").fetchone()[0]
    if not files:  # Spark writes no part file for an empty table
        return [f"{table}: empty on Spark, {duck_rows} rows on DuckDB"] if duck_rows else []
    spark_sql = f"select {select} from read_parquet({files})"
    spark_rows = con.execute(f"select count(*) from ({spark_sql})").fetchone()[0]
    if spark_rows != duck_rows:
        return [f"{table}: {spark_rows} rows on Spark, {duck_rows} on DuckDB"]
    only_duck = con.execute(f"{duck_sql} except all {spark_sql} limit 2").fetchall()
    only_spark = con.execute(f"{spark_sql} except all {duck_sql} limit 2").fetchall()
    if only_duck or only_spark:
        return [f"{table}: rows only on DuckDB {only_duck}; only on Spark {only_spark}"]
    return []


def test_every_mart_has_the_same_rows_and_values_on_both_engines(built):
    duck_path, spark_dir = built
    marts = duckdb_marts(duck_path)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        con.execute(f"ATTACH '{duck_path}' AS duck (READ_ONLY)")
        assert con.execute("select count(*) from duck.main.fct_incidents").fetchone()[0] > 100
        problems = [
            p for table, columns in sorted(marts.items()) for p in mismatches(con, table, columns, spark_dir)
        ]
    assert not problems, "\n".join(problems)
