"""fct_grid_events stays right between full refreshes: a later stage replaces the event, a withdrawn batch
takes its events away, and an open event becomes overdue on the night its deadline passes even when no
new row of it arrives; the incremental result then equals a full refresh of the same raw zone."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pingan.warehouse.build import build

pytestmark = pytest.mark.slow

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = datetime(2025, 3, 2, 2, 0, tzinfo=SHANGHAI)
DAY2 = datetime(2025, 3, 3, 2, 0, tzinfo=SHANGHAI)
MARCH_1 = datetime(2025, 3, 1, tzinfo=SHANGHAI)
FACT = "select * exclude (ingested_at) from fct_grid_events order by event_id"
CLOSURE = "select * from mart_grid_event_closure order by discovered_month, jurisdiction_code, event_type"
OVERDUE = "select * from mart_overdue_grid_events order by event_id"


def at(days: float = 0, hours: float = 0) -> datetime:
    return MARCH_1 + timedelta(days=days, hours=hours)


def query(path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        return con.execute(sql).fetchall()


def stages(event: str, **times: datetime) -> list[dict]:
    """Stage rows of one Qingpu dispute (MD01, deadline 360 h)."""
    return [
        {"source_record_id": f"{event}-{stage}", "event_id": f"310118:{event}", "stage": stage, "stage_at": t,
         "source_event_type": "MD01", "town": "金泽镇", "is_cross_border": False}
        for stage, t in times.items()
    ]  # fmt: skip


def test_grid_events_incremental_equals_full_refresh(wh_settings, raw_zone):
    raw_zone.rows(
        "qingpu_grid_events",
        stages("Q1", discovered=at(hours=8), dispatched=at(hours=9)) + stages("Q3", discovered=at(hours=10)),
        batch_id="qg-d1",
        ingested_at=DAY1,
    )
    raw_zone.rows("qingpu_grid_events", stages("Q9", discovered=at(hours=11)), batch_id="qg-d1-extra",
                  ingested_at=DAY1)  # fmt: skip
    build(wh_settings, raw_zone.batches, build_date=date(2025, 3, 2))
    wh = wh_settings.warehouse_path
    assert query(wh, "select event_id, is_closed, is_overdue from fct_grid_events order by 1") == [
        ("310118:Q1", False, False),
        ("310118:Q3", False, False),  # due on 16 March
        ("310118:Q9", False, False),
    ]

    # night of 31 March: Q1 closes, the extra batch was withdrawn by a rerun, nothing new about Q3
    raw_zone.rows("qingpu_grid_events", stages("Q1", closed=at(days=1, hours=9)), batch_id="qg-d2",
                  ingested_at=DAY2)  # fmt: skip
    raw_zone.withdraw("qg-d1-extra")
    build(wh_settings, raw_zone.batches, build_date=date(2025, 3, 31))
    assert query(wh, "select event_id, is_closed, is_overdue, batch_id from fct_grid_events order by 1") == [
        ("310118:Q1", True, False, "qg-d2"),
        ("310118:Q3", False, True, "qg-d1"),  # its deadline passed: re-evaluated without a new row
    ]
    incremental = query(wh, FACT), query(wh, CLOSURE), query(wh, OVERDUE)
    assert query(wh, "select event_id from mart_overdue_grid_events") == [("310118:Q3",)]
    # the night recomputed March only (Q1's and Q9's stages, Q3 turning overdue), and tested its own rows
    assert query(wh, "select distinct entity, month from raw.touched_months") == [
        ("grid_event_stage", date(2025, 3, 1))
    ]
    assert "raw.batch_changes" in compiled_test(wh_settings, "not_null_fct_grid_events_event_id")
    assert incremental[1][0][3:8] == (2, 1, 0.5, 1, 1)  # events, closed, closure rate, overdue, open overdue

    build(wh_settings, raw_zone.batches, build_date=date(2025, 3, 31), full_refresh=True)
    assert (query(wh, FACT), query(wh, CLOSURE), query(wh, OVERDUE)) == incremental
    # the full refresh tests whole tables: every committed batch counts as added
    added = query(wh, "select count(*) from raw.batch_changes where change = 'added'")[0][0]
    assert added == len(raw_zone.batches)


def compiled_test(settings, name: str) -> str:
    """The SQL the last build ran for a test (dbt's run_results.json)."""
    run = json.loads((settings.home / "dbt" / "target" / "run_results.json").read_text(encoding="utf-8"))
    return next(r["compiled_code"] for r in run["results"] if r["unique_id"].split(".")[2] == name)
