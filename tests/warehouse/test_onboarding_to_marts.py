"""Onboarding a district is its feed YAML files: 昆山市 (Kunshan, 320583) joins with an incident feed and a
grid-event feed, each one new file under connectors/ (plus its data). With the quality gate on, both reach
the facts and the KPI marts with their codes harmonised; the dbt project, the seeds and every other file of
the repository stay as they are."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, datetime, timedelta

import duckdb
import pytest
from stdnum.cn import ric

from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.orchestration.pipeline import build_warehouse, ingest_day

pytestmark = pytest.mark.slow

DAY = date(2025, 3, 2)
TOWNS = ["周庄镇", "锦溪镇", "千灯镇", "张浦镇"]

INCIDENT_SPEC = """
# 昆山市 警情: a made-up onboarding example: GBK CSV, '|'-separated, its own headers and codes.
feed: kunshan_incidents
jurisdiction_code: "320583"
entity: incident
domain: police
description: Kunshan incidents, daily GBK CSV with its own headers and category codes.
transport: {kind: file_drop, path: "kunshan/jq_{date:%Y-%m-%d}.csv"}
format: {kind: csv, encoding: gbk, delimiter: "|"}
primary_key: [编号]
columns:
  编号: {required: true}
  报警: {name: reported_at, type: timestamp, format: "%Y%m%d%H%M%S", required: true}
  派警: {name: dispatched_at, type: timestamp, format: "%Y%m%d%H%M%S"}
  到场: {name: arrived_at, type: timestamp, format: "%Y%m%d%H%M%S"}
  类别: {name: source_category_code, required: true}
  镇: {name: town, required: true}
  网格: {name: grid_id}
  纬度: {name: latitude, type: float}
  经度: {name: longitude, type: float}
  电话: {name: caller_phone, pii: true}
  证件: {name: involved_id_numbers, pii: true}
code_mapping:
  KS-DQ: {category: criminal, label: 盗窃}
  KS-JF: {category: dispute, label: 纠纷}
  KS-JT: {category: traffic, label: 交通}
"""

GRID_SPEC = """
# 昆山市 网格事件: a made-up onboarding example: UTF-8 CSV, one row per event, a column per stage.
feed: kunshan_grid_events
jurisdiction_code: "320583"
entity: grid_event_stage
domain: grid
description: Kunshan grid events, daily CSV with every event's stage times so far.
transport: {kind: file_drop, path: "kunshan/wg_{date:%Y-%m-%d}.csv"}
format: {kind: csv}
primary_key: [事件号, stage]
columns:
  事件号: {name: event_id, required: true, prefix_jurisdiction: true}
  类型: {name: source_event_type, required: true}
  网格: {name: grid_id}
  镇: {name: town, required: true}
  跨界: {name: is_cross_border, type: boolean, true_values: [是], false_values: [否]}
melt:
  name_column: stage
  value_column: stage_at
  type: timestamp
  format: "%Y-%m-%d %H:%M"
  columns: {上报: discovered, 派遣: dispatched, 处置: handled, 结案: closed}
code_mapping:
  KSWG-01: {category: dispute, label: 邻里纠纷}
  KSWG-02: {category: safety_hazard, label: 安全隐患}
"""


def incident_rows() -> list[str]:
    rows = ["编号|报警|派警|到场|类别|镇|网格|纬度|经度|电话|证件"]
    codes = ["KS-DQ", "KS-JF", "KS-JT"]
    for i in range(30):
        at = datetime(2025, 3, 2, 8, 0) + timedelta(minutes=17 * i)
        body = f"32058319950101{i:03d}"  # 320583 exists since 1989: stdnum checks it at birth
        rows.append(
            "|".join(
                [
                    f"KS{i:04d}",
                    f"{at:%Y%m%d%H%M%S}",
                    f"{at + timedelta(minutes=1):%Y%m%d%H%M%S}",
                    f"{at + timedelta(minutes=1 + 3 + i % 5):%Y%m%d%H%M%S}",
                    codes[i % 3],
                    TOWNS[i % 4],
                    f"KS-{i % 4:02d}",
                    "31.38",
                    "120.98",
                    f"1391234{i:04d}",
                    body + ric.calc_check_digit(body + "0"),
                ]
            )
        )
    return rows


def grid_rows() -> list[str]:
    rows = ["事件号,类型,网格,镇,跨界,上报,派遣,处置,结案"]
    for i in range(12):
        at = datetime(2025, 3, 1, 9, 0) + timedelta(hours=2 * i)
        closed = f"{at + timedelta(hours=20):%Y-%m-%d %H:%M}" if i % 3 else ""  # every third still open
        rows.append(
            ",".join(
                [
                    f"WG{i:03d}",
                    ["KSWG-01", "KSWG-02"][i % 2],
                    f"KS-{i % 4:02d}",
                    TOWNS[i % 4],
                    "否",
                    f"{at:%Y-%m-%d %H:%M}",
                    f"{at + timedelta(hours=1):%Y-%m-%d %H:%M}",
                    f"{at + timedelta(hours=8):%Y-%m-%d %H:%M}",
                    closed,
                ]
            )
        )
    return rows


def repository_digest() -> str:
    """Everything the build reads from the repository besides the feed specs."""
    h = hashlib.sha256()
    for folder in ("dbt/models", "dbt/seeds", "dbt/macros", "dbt/tests", "expectations"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            if path.is_file():
                h.update(str(path.relative_to(PROJECT_ROOT)).encode() + path.read_bytes())
    return h.hexdigest()


def test_a_new_district_reaches_the_marts_from_its_feed_yamls(home, tmp_path, monkeypatch):
    before = repository_digest()
    connectors = tmp_path / "connectors"
    shutil.copytree(PROJECT_ROOT / "connectors", connectors)
    (connectors / "incidents" / "kunshan.yaml").write_text(INCIDENT_SPEC, encoding="utf-8")
    (connectors / "grid_events" / "kunshan.yaml").write_text(GRID_SPEC, encoding="utf-8")
    monkeypatch.setenv("PINGAN_CONNECTORS_DIR", str(connectors))
    data = home / "sim" / "kunshan"
    data.mkdir(parents=True)
    (data / f"jq_{DAY}.csv").write_bytes("\n".join(incident_rows()).encode("gbk") + b"\n")
    (data / f"wg_{DAY}.csv").write_text("\n".join(grid_rows()) + "\n", encoding="utf-8")
    settings = load_settings()

    outcomes = {
        o.feed: o for o in ingest_day(settings, DAY, feeds=["kunshan_incidents", "kunshan_grid_events"])
    }
    assert {f: (o.status, o.result.rows_quarantined) for f, o in outcomes.items()} == {
        "kunshan_incidents": ("committed", 0),
        "kunshan_grid_events": ("committed", 0),
    }
    result = build_warehouse(settings, build_date=DAY)

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:

        def q(sql):
            return con.execute(sql).fetchall()

        assert q("select name_zh from dim_jurisdiction where jurisdiction_code = '320583'") == [("昆山市",)]
        assert q(
            "select category, count(*) from fct_incidents where source_feed = 'kunshan_incidents' "
            "group by 1 order by 1"
        ) == [("criminal", 10), ("dispute", 10), ("traffic", 10)]
        assert q("select sum(incidents) from mart_incident_trends where jurisdiction_code = '320583'") == [
            (30,)
        ]
        # arrivals 3..7 minutes after dispatch: 3 of every 5 within 5 minutes
        assert q(
            "select sum(incidents), round(sum(arrivals_within_5_min) / sum(incidents_with_arrival), 2) "
            "from mart_response_times where jurisdiction_code = '320583'"
        ) == [(30, 0.6)]
        assert q(
            "select event_type, count(*), count(*) filter (where is_closed) from fct_grid_events "
            "where source_feed = 'kunshan_grid_events' group by 1 order by 1"
        ) == [("dispute", 6, 4), ("safety_hazard", 6, 4)]
        assert q(
            "select sum(events), sum(closed_events) from mart_grid_event_closure "
            "where jurisdiction_code = '320583'"
        ) == [(12, 8)]
    assert "kunshan_incidents" not in result.stale_feeds
    assert repository_digest() == before
