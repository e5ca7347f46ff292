"""raw.quality_results grows by the night: a build reads only the results files of batches the working file
does not hold yet, and marks as current exactly the batches the build was given (raw.batches)."""

from __future__ import annotations

import json

import duckdb

from pingan.core.settings import load_settings
from pingan.core.storage import Store
from pingan.quality.results_store import results_key
from pingan.quality.results_table import register_quality_results

FEED = "qingpu_110_incidents"


def store_results(lake: Store, batch_id: str, rows_failed: int) -> None:
    row = {
        "feed": FEED, "entity": "incident", "jurisdiction_code": "310118", "load_date": "2025-03-01",
        "batch_id": batch_id, "status": "committed", "rows_read": 50, "stage": "gate",
        "rule": "quality:not_null", "severity": "warning", "outcome": "passed", "rows_failed": rows_failed,
        "rows_quarantined": 0, "cause": None,
    }  # fmt: skip
    lake.put_bytes(results_key(FEED, batch_id), json.dumps([row]).encode(), "application/json")


def committed(con: duckdb.DuckDBPyConnection, *batch_ids: str) -> None:
    con.execute("create schema if not exists raw")
    con.execute("create or replace table raw.batches (source_feed varchar, batch_id varchar)")
    for batch_id in batch_ids:
        con.execute("insert into raw.batches values (?, ?)", [FEED, batch_id])


def test_a_night_reads_only_new_results_and_recomputes_which_are_current(home):
    lake = Store(load_settings().lake_url)
    lake.ensure()
    con = duckdb.connect()
    store_results(lake, "b1", rows_failed=1)
    committed(con, "b1")
    assert register_quality_results(con, lake) == 1

    # the next night: b2 is new and replaced b1 (a rerun). b1's file is rewritten to prove it is not re-read
    store_results(lake, "b1", rows_failed=99)
    store_results(lake, "b2", rows_failed=2)
    committed(con, "b2")
    assert register_quality_results(con, lake) == 2
    rows = con.execute(
        "select batch_id, rows_failed, is_current from raw.quality_results order by 1"
    ).fetchall()
    assert rows == [("b1", 1, False), ("b2", 2, True)]

    # a full refresh starts from an empty file and reads every result
    fresh = duckdb.connect()
    committed(fresh, "b2")
    assert register_quality_results(fresh, lake) == 2
    assert fresh.execute("select rows_failed from raw.quality_results where batch_id = 'b1'").fetchone() == (
        99,
    )
