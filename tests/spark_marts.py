"""What the Spark tests share: a simulated lake built the nightly way on DuckDB, and a mart-by-mart
comparison of the DuckDB warehouse with a Spark warehouse directory.

Every mart must hold the same rows on both engines: same row counts, and the same values in every column,
numbers compared after rounding (KPIs such as percentiles are floating point on both engines). The facts'
row_hash is each engine's own hash function (DuckDB `hash`, Spark `xxhash64`): it is only ever compared with
hashes the same engine wrote, so it is checked for presence, not value.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pingan.core.settings import Settings, load_settings
from pingan.core.storage import Store
from pingan.orchestration.pipeline import build_warehouse, ingest_day, sources_for
from pingan_sim import simulate

MART_SCHEMA = "main"
ENGINE_HASH = "row_hash"
NUMERIC = ("DOUBLE", "FLOAT", "DECIMAL", "REAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT")
UNSET = (
    "PINGAN_LAKE_URL",
    "PINGAN_LANDING_URL",
    "PINGAN_WAREHOUSE",
    "PINGAN_S3_ENDPOINT",
    "PINGAN_SPARK_MASTER",
)


def simulated_settings(home: Path, mp: pytest.MonkeyPatch) -> Settings:
    """The embedded default deployment in `home` (lake, landing and warehouse on local disk)."""
    mp.setenv("PINGAN_HOME", str(home))
    for var in UNSET:
        mp.delenv(var, raising=False)
    return load_settings()


def ingest_and_build_nightly(settings: Settings, start: date, days: int, scale: float) -> date:
    """Simulate `days` days from `start`, ingest each and build the DuckDB warehouse incrementally after
    each, as the nightly job does; returns the last day."""
    landing = Store(settings.landing_url)
    landing.ensure()
    end = start + timedelta(days=days - 1)
    simulate(settings.home, landing, start, end, seed=7, scale=scale, defect_rate=0.01)
    day = start
    while day <= end:
        with sources_for(settings):
            outcomes = ingest_day(settings, day)
        assert all(o.status == "committed" for o in outcomes), [(o.feed, o.status, o.error) for o in outcomes]
        build_warehouse(settings, build_date=day)
        day += timedelta(days=1)
    return end


def duckdb_marts(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Every table of the DuckDB warehouse's main schema with its (column, type) list."""
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


def spark_tables(spark_dir: Path) -> set[str]:
    return {p.name for p in (spark_dir / f"{MART_SCHEMA}.db").iterdir() if p.is_dir()}


def normalised(column: str, dtype: str) -> str:
    """A value both engines write the same way: numbers as doubles rounded to 6 places."""
    quoted = f'"{column}"'
    if dtype.upper().startswith(NUMERIC):
        return f"round(cast({quoted} as double), 6) as {quoted}"
    return quoted


def spark_files(spark_dir: Path, table: str) -> list[str]:
    """A table's Parquet part files, partition folders (col=value/) included."""
    return [str(f) for f in sorted((spark_dir / f"{MART_SCHEMA}.db" / table).rglob("*.parquet"))]


def mismatches(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], spark_dir: Path
) -> list[str]:
    files = spark_files(spark_dir, table)
    select = ", ".join(normalised(c, t) for c, t in columns if c != ENGINE_HASH)
    duck_sql = f"select {select} from duck.{MART_SCHEMA}.{table}"
    duck_rows = con.execute(f"select count(*) from ({duck_sql})").fetchone()[0]
    if not files:  # Spark writes no part file for an empty table
        return [f"{table}: empty on Spark, {duck_rows} rows on DuckDB"] if duck_rows else []
    spark_sql = f"select {select} from read_parquet({files}, hive_partitioning = true)"
    spark_rows = con.execute(f"select count(*) from ({spark_sql})").fetchone()[0]
    if spark_rows != duck_rows:
        return [f"{table}: {spark_rows} rows on Spark, {duck_rows} on DuckDB"]
    only_duck = con.execute(f"{duck_sql} except all {spark_sql} limit 2").fetchall()
    only_spark = con.execute(f"{spark_sql} except all {duck_sql} limit 2").fetchall()
    if only_duck or only_spark:
        return [f"{table}: rows only on DuckDB {only_duck}; only on Spark {only_spark}"]
    return _missing_hashes(con, table, columns, files)


def _missing_hashes(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], files: list[str]
) -> list[str]:
    """A fact whose row_hash is null on one engine and not on the other (the macro missing an engine)."""
    if ENGINE_HASH not in {c for c, _ in columns}:
        return []
    relations = (f"duck.{MART_SCHEMA}.{table}", f"read_parquet({files}, hive_partitioning = true)")
    duck, spark = (
        con.execute(f"select count(*) from {r} where {ENGINE_HASH} is null").fetchone()[0] for r in relations
    )
    return (
        [f"{table}: {ENGINE_HASH} null in {duck} rows on DuckDB, {spark} on Spark"] if duck != spark else []
    )


def mart_differences(duck_path: Path, spark_dir: Path) -> list[str]:
    """Every difference between the DuckDB warehouse's marts and the Spark warehouse's (empty if equal)."""
    marts = duckdb_marts(duck_path)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        con.execute(f"ATTACH '{duck_path}' AS duck (READ_ONLY)")
        return [
            p for table, columns in sorted(marts.items()) for p in mismatches(con, table, columns, spark_dir)
        ]
