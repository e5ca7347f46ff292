"""KPI marts recompute only the months a night touches, and still equal a full refresh when a night moves a
record to another month, empties a month by withdrawing its only batch, or pairs a new report with an old
one as a cross-border double report."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pingan.warehouse.build import build

pytestmark = pytest.mark.slow

SHANGHAI = ZoneInfo("Asia/Shanghai")
MARTS = {
    "mart_incident_trends": "incident_month, jurisdiction_code, category",
    "mart_response_times": "incident_month, jurisdiction_code, town, category",
    "int_incidents__cross_border_pairs": "pair_id",
}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def snapshot(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        schema = {"int_incidents__cross_border_pairs": "intermediate."}
        return {
            t: con.execute(f"select * from {schema.get(t, '')}{t} order by {order}").fetchall()
            for t, order in MARTS.items()
        }


def months(
    path, sql: str = "select incident_month, sum(incidents) from mart_incident_trends group by 1 order by 1"
):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_months_moved_emptied_and_paired_equal_a_full_refresh(wh_settings, raw_zone, reference):
    qp, wj = "qingpu_110_incidents", "wujiang_incidents"
    traffic_qp, traffic_wj = reference.code(qp, "traffic"), reference.code(wj, "traffic")
    border_qp, border_wj = reference.town("310118", border=True), reference.town("320509", border=True)
    jan, feb, mar = date(2025, 1, 15), date(2025, 2, 10), date(2025, 3, 1)

    def call(source_id: str, when: datetime, code: str, town: str) -> dict:
        return {"source_record_id": source_id, "source_category_code": code, "town": town, "reported_at": when,
                "latitude": 31.0412, "longitude": 120.9234}  # fmt: skip

    raw_zone.incidents(qp, [call("A", at(mar, 9), traffic_qp, border_qp)], batch_id="qp-1",
                       ingested_at=at(mar, 23))  # fmt: skip
    raw_zone.incidents(qp, [call("J", at(jan, 9), traffic_qp, border_qp)], batch_id="qp-jan",
                       ingested_at=at(mar, 23), load_date=jan)  # fmt: skip
    build(wh_settings, raw_zone.batches, build_date=mar)
    wh = wh_settings.warehouse_path
    assert months(wh) == [(date(2025, 1, 1), 1), (date(2025, 3, 1), 1)]

    # next night: A is re-delivered as a February call, January's only batch is withdrawn, and Wujiang
    # reports the same February event 10 minutes later from across the border (a double report of A)
    nxt = mar + timedelta(days=1)
    raw_zone.incidents(qp, [call("A", at(feb, 9), traffic_qp, border_qp)], batch_id="qp-2",
                       ingested_at=at(nxt, 23), load_date=nxt)  # fmt: skip
    raw_zone.withdraw("qp-jan")
    raw_zone.incidents(wj, [call("W", at(feb, 9, 10), traffic_wj, border_wj)], batch_id="wj-2",
                       ingested_at=at(nxt, 23), load_date=nxt)  # fmt: skip
    build(wh_settings, raw_zone.batches, build_date=nxt)
    incremental = snapshot(wh)
    # A counts in February and W, its later copy, is left out; January and March are gone
    assert months(wh) == [(date(2025, 2, 1), 1)]
    assert [p[0] for p in incremental["int_incidents__cross_border_pairs"]] == ["310118:A|320509:W"]
    with duckdb.connect(str(wh), read_only=True) as con:
        touched = con.execute("select distinct month from raw.touched_months order by 1").fetchall()
    assert touched == [(date(2025, 1, 1),), (date(2025, 3, 1),)]  # where A and J counted before tonight

    build(wh_settings, raw_zone.batches, build_date=nxt, full_refresh=True)
    assert snapshot(wh) == incremental
