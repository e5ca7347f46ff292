"""An incremental Spark build equals a full Spark rebuild of the same lake.

Driven as an operator would: simulated sources, the real loads and gate, one incremental Spark build per
night (persistent Derby catalog, partition overwrite of the mirrors, of the facts' days and of the month
marts' months); then a
night that reruns night 1 without one call and no longer commits one batch (its partition must be
dropped). The
incremental warehouse is then compared, table by table and value by value, with a full rebuild.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from sim_edits import withdraw_first_record
from spark_marts import normalised, simulated_settings

from pingan import raw_zone
from pingan.core.storage import Store, lake_store
from pingan.orchestration.pipeline import ingest_day, sources_for
from pingan.warehouse.spark import build_on_spark, spark_catalog_dir
from pingan_sim import simulate

# four Spark builds of ~250 dbt nodes each: about 5 minutes on a quiet 2-core machine, 15 on a busy one
pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.timeout(2400)]

D1, D2 = date(2025, 3, 1), date(2025, 3, 2)
SCHEMAS = ("main", "intermediate")  # raw.* holds only the batches a build read; staging models are views
GONE_FEED = "wujiang_incidents"  # its D2 batch is no longer committed in the last step


def tables(warehouse: Path) -> dict[str, list[str]]:
    """`schema.table` -> its Parquet part files (partition folders included), for every table written."""
    out = {}
    for schema in SCHEMAS:
        for table in sorted((warehouse / f"{schema}.db").iterdir()):
            out[f"{schema}.{table.name}"] = [str(f) for f in sorted(table.rglob("*.parquet"))]
    return out


def scan(files: list[str]) -> str:
    return f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"


def differences(incremental: Path, full: Path) -> list[str]:
    """Every table whose rows differ between two Spark warehouses (numbers rounded to 6 places)."""
    ours, theirs = tables(incremental), tables(full)
    problems = [f"{t}: only in one warehouse" for t in sorted(set(ours) ^ set(theirs))]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        for name in sorted(set(ours) & set(theirs)):
            a, b = ours[name], theirs[name]
            if not a or not b:  # Spark writes no part file for an empty table
                problems += [f"{name}: empty in one warehouse"] if a or b else []
                continue
            columns = con.execute(f"describe select * from {scan(b)}").fetchall()
            select = ", ".join(normalised(c[0], c[1]) for c in columns)
            sql_a, sql_b = f"select {select} from {scan(a)}", f"select {select} from {scan(b)}"
            extra = con.execute(f"{sql_a} except all {sql_b} limit 2").fetchall()
            missing = con.execute(f"{sql_b} except all {sql_a} limit 2").fetchall()
            if extra or missing:
                problems.append(f"{name}: only incremental {extra}; only full {missing}")
    return problems


def partition_files(warehouse: Path, day: date) -> dict[str, float]:
    """Modification times of the mirrors' part files of one load date."""
    folder = warehouse / "intermediate.db"
    return {str(f): f.stat().st_mtime_ns for f in folder.glob(f"*/load_date={day}/*/*.parquet")}


def month_files(warehouse: Path, mart: str) -> dict[str, float]:
    """Modification times of a month mart's part files, partition folders included."""
    folder = warehouse / "main.db" / mart
    return {str(f): f.stat().st_mtime_ns for f in folder.glob("*/*.parquet")}


def count(warehouse: Path, table: str, where: str) -> int:
    files = tables(warehouse)[f"main.{table}"]
    with duckdb.connect() as con:
        return con.execute(f"select count(*) from {scan(files)} where {where}").fetchone()[0]


def test_incremental_spark_builds_equal_a_full_rebuild(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        settings = simulated_settings(tmp_path_factory.mktemp("spark-inc"), mp)
        landing = Store(settings.landing_url)
        landing.ensure()
        simulate(settings.home, landing, D1, D2, seed=7, scale=0.05, defect_rate=0.01)
        lake = lake_store(settings)

        def night(day: date, build_date: date, feeds=None, keep=lambda b: True):
            with sources_for(settings):
                ingest_day(settings, day, feeds=feeds)
            batches = [b for b in raw_zone.committed_batches(lake) if keep(b)]
            built = build_on_spark(settings, batches, lake=lake, build_date=build_date, incremental=True)
            return built, batches

        first, _ = night(D1, D1)
        assert spark_catalog_dir(settings).joinpath("metastore_db").is_dir()
        night_one_files = partition_files(first.warehouse_dir, D1)
        assert night_one_files, "the mirrors have no load_date partitions"
        night(D2, D2)
        # night 2 wrote its own partitions and left night 1's files as they were
        assert partition_files(first.warehouse_dir, D1) == night_one_files
        assert partition_files(first.warehouse_dir, D2)
        # the month marts are partitioned by month; the last night touches no inspection or alarm
        fire_months = month_files(first.warehouse_dir, "mart_fire_safety")
        assert any("activity_month=" in f for f in fire_months), "mart_fire_safety has no month partitions"

        # one night with a rerun of night 1 that withdraws a call, and a batch the lake no longer commits
        # (Wujiang's D2): its partition must go although no new row replaces it
        withdrawn = withdraw_first_record(settings, D1)

        def kept(b) -> bool:
            return not (b.feed == GONE_FEED and b.load_date == D2)

        result, batches = night(D1, D2, feeds=["qingpu_110_incidents"], keep=kept)
        assert count(result.warehouse_dir, "fct_incidents", f"record_id = '{withdrawn}'") == 0
        assert count(result.warehouse_dir, "fct_incidents", f"source_feed = '{GONE_FEED}'") > 0
        gone = result.warehouse_dir / "intermediate.db" / "int_incidents__versions" / f"load_date={D2}"
        assert not (gone / f"source_feed={GONE_FEED}").exists()
        assert (gone / "source_feed=qingpu_110_incidents").exists()
        # a month of a KPI mart the night did not touch kept its files (only touched months are rewritten)
        assert month_files(result.warehouse_dir, "mart_fire_safety") == fire_months
        # the incremental night's per-node times (README: Incremental models), kept with the test's files
        timings = tmp_path_factory.mktemp("timings") / "incremental_run_results.json"
        shutil.copy(settings.home / "dbt-spark" / "target" / "run_results.json", timings)

        incremental = tmp_path_factory.mktemp("incremental") / "spark-warehouse"
        shutil.copytree(result.warehouse_dir, incremental)
        full = build_on_spark(settings, batches, lake=lake, build_date=D2)
        assert full.mart_rows == result.mart_rows
        problems = differences(incremental, full.warehouse_dir)
        assert not problems, "\n".join(problems)
