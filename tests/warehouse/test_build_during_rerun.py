"""A build reads a fixed set of committed batches from start to end, whatever reruns happen meanwhile.

Under Airflow a warehouse build runs beside same-day ingest reruns. Here the build is paused between
registering its inputs and running dbt, the day's ingest is rerun there (its commit supersedes the batch the
build is about to read), and the build must still finish from the batch it started with. The superseded
batch's files go once the build has released its lease (the retention window is 0 here, so only the lease
holds them).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from pingan import raw_zone
from pingan.core.settings import load_settings
from pingan.core.storage import Store, lake_store
from pingan.orchestration.pipeline import build_warehouse, ingest_day
from pingan.raw_zone import retention
from pingan_sim import simulate

pytestmark = pytest.mark.slow

DAY = date(2025, 3, 1)
FEED = "jiashan_incidents"


def batch_ids_in(settings, table: str) -> set[str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {r[0] for r in con.execute(f"select distinct batch_id from {table}").fetchall()}


def files_exist(lake: Store, batch_id: str) -> bool:
    return any(f"batch={batch_id}/" in k for k in lake.list("raw/"))


def test_a_rerun_during_a_build_does_not_break_it(wh_settings, monkeypatch):
    monkeypatch.setenv("PINGAN_SUPERSEDED_RETENTION_MINUTES", "0")
    settings = load_settings()
    landing = Store(settings.landing_url)
    landing.ensure()
    simulate(settings.home, landing, DAY, DAY, seed=7, scale=0.05, defect_rate=0.0)
    lake = lake_store(settings)
    (first,) = ingest_day(settings, DAY, feeds=[FEED], gate=False)
    assert first.status == "committed"
    started_with = first.result.batch_id

    during: dict[str, object] = {}

    def rerun_the_day() -> None:
        (rerun,) = ingest_day(settings, DAY, feeds=[FEED], gate=False)
        during["rerun"] = rerun.result.batch_id
        during["committed"] = raw_zone.committed_manifest_record(lake, FEED, DAY).batch_id
        during["old_files_kept"] = files_exist(lake, started_with)

    result = build_warehouse(settings, build_date=DAY, before_dbt=rerun_the_day)

    assert during["committed"] == during["rerun"] != started_with
    assert during["old_files_kept"], "the rerun deleted the files of a batch a running build reads"
    assert result.mart_rows["fct_incidents"] > 0
    assert batch_ids_in(settings, "fct_incidents") == {started_with}  # the set the build started with
    # the build is over: nothing holds the superseded batch any more, so the build's sweep removed it
    assert not files_exist(lake, started_with)
    assert retention.pending(lake) == [] and retention.live_leases(lake) == []

    build_warehouse(settings, build_date=DAY)  # the next build takes the rerun's batch
    assert batch_ids_in(settings, "fct_incidents") == {during["rerun"]}
