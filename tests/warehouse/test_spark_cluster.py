"""The warehouse built on a real standalone Spark cluster equals the DuckDB build.

A master and two workers (1 GB, one core each) run on 127.0.0.1 from the installed pyspark (the
`spark_cluster` fixture); the build's driver runs here and its tasks in the workers' executors, through
`spark://127.0.0.1:<port>`, as `pingan build --engine spark --spark-master URL` does against a production
cluster. Kept to one simulated day: the cluster's start and per-task scheduling cost more than the data.
"""

from __future__ import annotations

from datetime import date

import pytest
from spark_marts import (
    duckdb_marts,
    ingest_and_build_nightly,
    mart_differences,
    simulated_settings,
    spark_tables,
)

from pingan import raw_zone
from pingan.core.settings import load_settings
from pingan.core.storage import lake_store
from pingan.warehouse.spark import build_on_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]

DAY = date(2025, 3, 1)


def test_the_cluster_builds_every_mart_equal_to_duckdb(spark_cluster, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        simulated_settings(tmp_path / "home", mp)
        # the deployment setting names the cluster, as PINGAN_SPARK_MASTER does in production
        mp.setenv("PINGAN_SPARK_MASTER", spark_cluster.master_url)
        settings = load_settings()
        assert settings.spark_master == spark_cluster.master_url
        ingest_and_build_nightly(settings, DAY, days=1, scale=0.1)
        lake = lake_store(settings)
        result = build_on_spark(settings, raw_zone.committed_batches(lake), lake=lake, build_date=DAY)

    # the master ran the build as one application with both workers' cores
    apps = [a for a in spark_cluster.applications() if a["name"] == "pingan-warehouse"]
    assert len(apps) == 1, apps
    assert apps[0]["cores"] == 2, apps[0]
    assert result.mart_rows["fct_incidents"] > 0
    marts = duckdb_marts(settings.warehouse_path)
    assert spark_tables(result.warehouse_dir) == set(marts)
    problems = mart_differences(settings.warehouse_path, result.warehouse_dir)
    assert not problems, "\n".join(problems)
