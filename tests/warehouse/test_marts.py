"""The KPI marts over a small made-up raw zone: every figure below is worked out by hand from the rows
written here (closure rate, percentiles, share within 5 minutes, overdue items, risk-score components,
a cross-border double report counted once, SCD2 intervals of the tax registry)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pingan.core.pseudonym import load_hub_key, pseudonym_list
from pingan.core.settings import PROJECT_ROOT
from pingan.warehouse.build import build

pytestmark = pytest.mark.slow

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = datetime(2025, 3, 2, 2, 0, tzinfo=SHANGHAI)
DAY2 = datetime(2025, 3, 3, 2, 0, tzinfo=SHANGHAI)
MARCH_1 = datetime(2025, 3, 1, tzinfo=SHANGHAI)
ABNORMAL = "91310118MA1FL0001A"  # USCC-shaped ids: the warehouse does not re-validate them
NORMAL = "91310118MA1FL0002B"
ABNORMAL_ADDRESS = "青浦区赵巷镇嘉松中路88号"


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return MARCH_1 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def query(path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        return con.execute(sql).fetchall()


def write_incidents(raw_zone, reference) -> None:
    qp, wj = "qingpu_110_incidents", "wujiang_incidents"
    traffic_qp, traffic_wj = reference.code(qp, "traffic"), reference.code(wj, "traffic")
    # 赵巷镇 traffic: dispatch → arrival of 60, 120, 300, 400, 600 s, and one unit that never arrived
    timed = [
        {
            "source_record_id": f"QP-RT-{i}",
            "source_category_code": traffic_qp,
            "town": "赵巷镇",
            "reported_at": at(hours=9 + i),
            "dispatched_at": at(hours=9 + i, minutes=1),
            "arrived_at": None if secs is None else at(hours=9 + i, minutes=1, seconds=secs),
        }
        for i, secs in enumerate([60, 120, 300, 400, 600, None])
    ]
    # one event on the 金泽镇—黎里镇 border reported by both sides, 10 minutes and ~38 m apart
    border_qp = {
        "source_record_id": "QP-BORDER",
        "source_category_code": traffic_qp,
        "town": "金泽镇",
        "reported_at": at(hours=8),
        "latitude": 31.0400,
        "longitude": 120.9000,
    }
    at_enterprise = {
        "source_record_id": "QP-AT-ENTERPRISE",
        "source_category_code": reference.code(qp, "criminal"),
        "town": "赵巷镇",
        "reported_at": at(hours=20),
        "address": ABNORMAL_ADDRESS,
    }
    raw_zone.incidents(qp, [*timed, border_qp, at_enterprise], batch_id="qp-d1", ingested_at=DAY1)
    border_wj = {
        "source_record_id": "WJ-BORDER",
        "source_category_code": traffic_wj,
        "town": "黎里镇",
        "reported_at": at(hours=8, minutes=10),
        "latitude": 31.0403,
        "longitude": 120.9002,
    }
    raw_zone.incidents(wj, [border_wj], batch_id="wj-d1", ingested_at=DAY1)


def stage_rows(event: str, event_type: str, stages: dict[str, datetime], town: str) -> list[dict]:
    return [
        {
            "source_record_id": f"{event}-{stage}",
            "event_id": event,
            "stage": stage,
            "stage_at": stage_at,
            "source_event_type": event_type,
            "town": town,
            "is_cross_border": False,
            "parties": "张三;李四",
        }
        for stage, stage_at in stages.items()
    ]


def write_grid_events(raw_zone) -> None:
    q1 = {
        "discovered": at(hours=8),
        "dispatched": at(hours=8, minutes=20),
        "verified": at(hours=10),
        "handled": at(hours=20),
        "closed": at(days=1, hours=8),
        "feedback": at(days=1, hours=10),
    }
    q2 = {"discovered": at(hours=9), "closed": at(days=19, hours=9)}  # 456 h: past the 360 h deadline
    q3 = {"discovered": at(hours=10), "dispatched": at(hours=10, minutes=30)}  # open since 2025: overdue
    q4 = {"discovered": at(hours=11), "closed": at(days=2, hours=11)}
    rows = []
    for event, stages in {"310118:Q1": q1, "310118:Q2": q2, "310118:Q3": q3, "310118:Q4": q4}.items():
        rows += stage_rows(event, "MD01", stages, "金泽镇")
    raw_zone.rows("qingpu_grid_events", rows, batch_id="qg-d1", ingested_at=DAY1)
    # Jiashan: no 核查 stage; a public-order event closed 72 h + 1 s after discovery (deadline 72 h)
    j1 = {
        "discovered": at(hours=8),
        "dispatched": at(hours=11),
        "handled": at(days=1, hours=11),
        "closed": at(days=3, hours=8, seconds=1),
    }
    raw_zone.rows(
        "jiashan_grid_events",
        stage_rows("330421:J1", "SJ-401", j1, "西塘镇"),
        batch_id="jg-d1",
        ingested_at=DAY1,
    )


def write_enterprises_and_fire(raw_zone) -> None:
    state = {
        "uscc": ABNORMAL,
        "name": "青浦某某物流有限公司",
        "legal_rep_name": "王五",
        "address": ABNORMAL_ADDRESS,
        "town": "赵巷镇",
        "industry_code": "G5430",
    }
    raw_zone.rows(
        "qingpu_tax_registry",
        [
            {**state, "registration_status": "正常", "tax_credit_rating": "A", "updated_at": at(days=-59)},
            {
                "uscc": NORMAL,
                "name": "青浦某某餐饮店",
                "address": "青浦区金泽镇某路1号",
                "town": "金泽镇",
                "registration_status": "正常",
                "tax_credit_rating": "B",
                "updated_at": at(days=-30),
            },
        ],
        batch_id="tax-d1",
        ingested_at=DAY1,
    )
    raw_zone.rows(
        "qingpu_tax_registry",
        [
            {
                **state,
                "registration_status": "非正常户",
                "tax_credit_rating": "D",
                "updated_at": at(days=1, hours=15),
            }
        ],
        batch_id="tax-d2",
        ingested_at=DAY2,
    )
    raw_zone.rows(
        "qingpu_fire_inspections",
        [
            {
                "source_record_id": "INS-1",
                "uscc": ABNORMAL,
                "inspected_on": at().date(),
                "hazards_found": 3,
                "hazards_rectified": 1,
                "rectification_deadline": at(days=14).date(),
                "town": "赵巷镇",
            }
        ],
        batch_id="ins-d1",
        ingested_at=DAY1,
    )
    alarms = [
        {
            "source_record_id": f"AL-{i}",
            "uscc": ABNORMAL,
            "device_id": "DEV-1",
            "source_alarm_type": "YG01",
            "is_true_alarm": true_alarm,
            "town": "赵巷镇",
            "raised_at": at(hours=i),
            "confirmed_at": at(hours=i, minutes=2),
            "handled_at": at(hours=i, minutes=minutes),
        }
        for i, (true_alarm, minutes) in enumerate([(True, 10), (True, 20), (False, 30)])
    ]
    raw_zone.rows("qingpu_fire_alarms", alarms, batch_id="al-d1", ingested_at=DAY1)


def test_kpi_marts_over_a_made_up_raw_zone(wh_settings, raw_zone, reference):
    """One build (about half a minute), then each mart's figures, one check per mart."""
    write_incidents(raw_zone, reference)
    write_grid_events(raw_zone)
    write_enterprises_and_fire(raw_zone)
    # built for the end of March: the feeds last loaded on 3 March are stale by then, and open items overdue
    result = build(wh_settings, raw_zone.batches, build_date=date(2025, 3, 31))

    for model in (
        "fct_grid_events",
        "fct_fire_inspections",
        "fct_fire_alarms",
        "dim_enterprise",
        "dim_grid",
        "dim_checkpoint",
        "mart_response_times",
        "mart_grid_event_closure",
        "mart_fire_safety",
        "mart_enterprise_risk",
        "mart_cross_border",
        "mart_incident_trends",
    ):
        assert result.mart_rows[model] > 0, model
    wh = wh_settings.warehouse_path
    check_response_time_percentiles_and_share_within_5_minutes(wh)
    check_double_report_is_paired_and_counted_once(wh)
    check_grid_event_closure_rate_overdue_and_stage_times(wh, load_hub_key(wh_settings))
    check_fire_safety_and_enterprise_risk_components(wh)
    check_enterprise_registry_history_is_scd2(wh)
    check_readme_questions_each_read_one_mart(wh)


def check_response_time_percentiles_and_share_within_5_minutes(wh) -> None:
    row = query(
        wh,
        """select incidents, incidents_with_arrival, p50_dispatch_to_arrival_seconds,
                       p90_dispatch_to_arrival_seconds, arrivals_within_5_min, share_within_5_min
                       from mart_response_times where town = '赵巷镇' and category = 'traffic'""",
    )
    # p90 interpolates between 400 and 600: 400 + 0.6 × 200
    assert row == [(6, 5, 300.0, 520.0, 3, 0.6)]


def check_double_report_is_paired_and_counted_once(wh) -> None:
    pairs = query(
        wh,
        """select original_record_id, double_report_record_id, seconds_apart, round(distance_m)
                         from intermediate.int_incidents__cross_border_pairs""",
    )
    assert pairs == [("310118:QP-BORDER", "320509:WJ-BORDER", 600, 38.0)]
    trends = query(
        wh,
        """select jurisdiction_code, incidents, double_reports_excluded from mart_incident_trends
                          where category = 'traffic' order by 1""",
    )
    assert trends == [("310118", 7, 0), ("320509", 0, 1)]
    border = query(
        wh,
        """select jurisdiction_code, subject, activity_count from mart_cross_border
                          where activity_kind = 'border_town_incident' order by 1""",
    )
    assert border == [("310118", "金泽镇", 1)]  # Wujiang's copy of the same event is not counted again


def check_grid_event_closure_rate_overdue_and_stage_times(wh, hub_key: bytes) -> None:
    closure = query(
        wh,
        """select jurisdiction_code, event_type, events, closed_events, closure_rate,
                           overdue_events, open_overdue_events, round(p50_discovered_to_closed_hours, 4)
                           from mart_grid_event_closure order by 1""",
    )
    assert closure == [
        ("310118", "dispute", 4, 3, 0.75, 2, 1, 48.0),  # closed after 24 h, 456 h (late), 48 h; one open
        ("330421", "public_order", 1, 1, 1.0, 1, 0, 72.0003),  # 72 h + 1 s: just late
    ]
    q1 = query(
        wh,
        """select dispatch_stage_seconds, verify_stage_seconds, handle_stage_seconds,
                      close_stage_seconds, feedback_stage_seconds, is_closed, is_overdue, parties
                      from fct_grid_events where event_id = '310118:Q1'""",
    )
    # party names reach the analysts' tier only as the hub's keyed pseudonyms, one per name
    assert q1 == [(1200, 6000, 36000, 43200, 7200, True, False, pseudonym_list(hub_key, "张三;李四"))]
    j1 = query(
        wh,
        "select verify_stage_seconds, handle_stage_seconds from fct_grid_events where event_id = '330421:J1'",
    )
    assert j1 == [(None, 86400)]  # Jiashan has no 核查: handling is timed from dispatch


def check_fire_safety_and_enterprise_risk_components(wh) -> None:
    fire = query(
        wh,
        """select inspections, hazards_found, hazards_rectified, open_hazards, alarms, true_alarms,
                        round(true_alarm_ratio, 4), p50_alarm_handling_minutes, overdue_open_hazards, is_source_stale
                        from mart_fire_safety where town = '赵巷镇'""",
    )
    # the 2 open hazards were due on 15 March; the fire feeds last loaded on 2 March are stale on the 31st
    assert fire == [(1, 3, 1, 2, 3, 2, 0.6667, 20.0, 2, True)]
    risk = query(
        wh,
        """select uscc, registration_status, tax_status_points, credit_rating_points,
                        open_hazard_points, true_alarm_points, incident_points, risk_score, risk_level
                        from mart_enterprise_risk order by uscc""",
    )
    assert risk == [
        (ABNORMAL, "非正常户", 40, 25, 10, 4, 1, 80, "high"),  # 2 open hazards, 2 true alarms, 1 incident
        (NORMAL, "正常", 0, 0, 0, 0, 0, 0, "low"),
    ]


def check_enterprise_registry_history_is_scd2(wh) -> None:
    history = query(
        wh,
        f"""select tax_credit_rating, valid_from, valid_to, is_current from dim_enterprise
                            where uscc = '{ABNORMAL}' order by valid_from""",
    )
    assert history == [
        ("A", at(days=-59), at(days=1, hours=15), False),
        ("D", at(days=1, hours=15), None, True),
    ]


def readme_analyst_queries() -> list[str]:
    """The SQL statements of the README's "Analysts: the six questions" section."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Analysts: the six questions", 1)[1].split("\n## ", 1)[0]
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", section, re.S):
        for statement in block.split(";"):
            sql = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
            if sql.strip():
                statements.append(sql)
    return statements


def check_readme_questions_each_read_one_mart(wh) -> None:
    queries = readme_analyst_queries()
    assert len(queries) >= 6
    for sql in queries:
        assert " join " not in sql.lower(), sql
        assert len(re.findall(r"\bfrom\s+\w+", sql, re.I)) == 1, sql
        assert query(wh, sql), f"no rows: {sql}"
