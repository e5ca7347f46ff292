"""Periods are local and fixed: no reader's or build's time zone changes a count, no row lacks its period,
and the simulator's cross-border double reports are each counted once.

Built as an operator builds: three simulated days (with the simulator's planted double reports), the real
loads and gate, nightly incremental builds. Then the same lake is built again with dbt's session set to
America/New_York (a copy of the dbt project whose profile says so) and must give the same warehouse.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.orchestration.pipeline import build_warehouse, ingest_day, sources_for
from pingan.warehouse.compare import differences
from pingan_sim import simulate
from pingan_sim.double_reports import read_ledger

pytestmark = pytest.mark.slow  # about 2 minutes: three nights and a second full build

DAYS = (date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3))
ZONES = ("Asia/Shanghai", "UTC", "America/New_York")
# Each fact's and mart's period column (a DATE): no row may lack it.
PERIODS = {
    "fct_incidents": "reported_on",
    "fct_grid_events": "discovered_on",
    "fct_fire_alarms": "raised_on",
    "fct_fire_inspections": "inspected_on",
    "fct_joint_operations": "operation_date",
    "mart_incident_trends": "incident_month",
    "mart_response_times": "incident_month",
    "mart_grid_event_closure": "discovered_month",
    "mart_fire_safety": "activity_month",
    "mart_cross_border": "activity_month",
}
# What an analyst counts per period: a row count per period of every table above, plus the marts' sums.
READER_QUERIES = [
    f"select {col}, count(*) from {table} group by 1 order by 1" for table, col in PERIODS.items()
] + [
    "select incident_month, sum(incidents), sum(double_reports_excluded) from mart_incident_trends group by 1 order by 1",
    "select discovered_month, sum(events), sum(closed_events), sum(overdue_events) "
    "from mart_grid_event_closure group by 1 order by 1",
    "select activity_month, activity_kind, sum(activity_count) from mart_cross_border group by 1, 2 order by 1, 2",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    home = tmp_path_factory.mktemp("periods")
    mp = pytest.MonkeyPatch()
    mp.setenv("PINGAN_HOME", str(home))
    for var in ("PINGAN_LAKE_URL", "PINGAN_LANDING_URL", "PINGAN_WAREHOUSE", "PINGAN_S3_ENDPOINT",
                "PINGAN_QINGPU_FIRE_URL", "PINGAN_PINGHU_JINSHAN_URL", "PINGAN_QINGPU_FIRE_TOKEN",
                "PINGAN_QINGPU_TAX_DB_URL", "PINGAN_DBT_DIR"):  # fmt: skip
        mp.delenv(var, raising=False)
    settings = load_settings()
    landing = Store(settings.landing_url)
    landing.ensure()
    simulate(settings.home, landing, DAYS[0], DAYS[-1], seed=7, scale=0.1, defect_rate=0.01)
    with sources_for(settings):
        for day in DAYS:
            ingest_day(settings, day)
            build_warehouse(settings, build_date=day)
    yield settings
    mp.undo()


def dbt_project_in_zone(tmp: Path, zone: str) -> Path:
    """A copy of the dbt project whose build session runs in `zone` instead of Asia/Shanghai."""
    target = tmp / "dbt"
    shutil.copytree(PROJECT_ROOT / "dbt", target, ignore=shutil.ignore_patterns("target", "logs"))
    profiles = target / "profiles.yml"
    text = profiles.read_text(encoding="utf-8")
    assert "TimeZone: Asia/Shanghai" in text
    profiles.write_text(text.replace("TimeZone: Asia/Shanghai", f"TimeZone: {zone}"), encoding="utf-8")
    return target


def rows_in_zone(path: Path, zone: str, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute(f"SET TimeZone = '{zone}'")
        return con.execute(sql).fetchall()


def test_no_fact_or_mart_row_lacks_its_period(built):
    path = built.warehouse_path
    for table, col in PERIODS.items():
        rows, missing = rows_in_zone(path, "UTC", f"select count(*), count(*) - count({col}) from {table}")[0]
        assert rows > 0, f"{table} is empty: the test proves nothing"
        assert missing == 0, f"{table}: {missing} of {rows} rows have no {col}"
    # events whose discovery stage predates the lake (later stages only) are there, and have their period
    without = rows_in_zone(path, "UTC", "select count(*) from fct_grid_events where not has_discovery_stage")
    assert without[0][0] > 0
    closure = "select sum(events_without_discovery_stage), sum(events) from mart_grid_event_closure"
    counted, events = rows_in_zone(path, "UTC", closure)[0]
    assert counted == without[0][0]
    assert events == rows_in_zone(path, "UTC", "select count(*) from fct_grid_events")[0][0]


def test_local_days_are_the_districts_days(built):
    checks = {
        "fct_incidents": "reported_on <> cast(timezone('Asia/Shanghai', reported_at) as date)",
        "fct_fire_alarms": "raised_on <> cast(timezone('Asia/Shanghai', raised_at) as date)",
        "fct_grid_events": "discovered_on <> cast(timezone('Asia/Shanghai', coalesce(discovered_at, first_seen_at))"
        " as date)",
    }
    for table, wrong in checks.items():
        assert rows_in_zone(built.warehouse_path, "UTC", f"select count(*) from {table} where {wrong}") == [
            (0,)
        ]
    # the simulated days are March 1-3 in Shanghai: no incident falls on 28 February
    days = rows_in_zone(
        built.warehouse_path, "UTC", "select distinct reported_on from fct_incidents order by 1"
    )
    assert [d for (d,) in days] == list(DAYS)


def test_no_reader_time_zone_changes_a_count(built):
    path = built.warehouse_path
    for sql in READER_QUERIES:
        answers = {zone: rows_in_zone(path, zone, sql) for zone in ZONES}
        assert answers["UTC"] == answers["Asia/Shanghai"] == answers["America/New_York"], sql
    # the test can tell: casting the instant itself gives other days in other zones
    cast = "select cast(reported_at as date), count(*) from fct_incidents group by 1 order by 1"
    assert rows_in_zone(path, "UTC", cast) != rows_in_zone(path, "Asia/Shanghai", cast)


def test_the_build_session_time_zone_changes_nothing(built, tmp_path):
    elsewhere = dataclasses.replace(
        built,
        dbt_dir=dbt_project_in_zone(tmp_path, "America/New_York"),
        warehouse_path=tmp_path / "new_york.duckdb",
    )
    build_warehouse(elsewhere, full_refresh=True, build_date=DAYS[-1])
    assert differences(built.warehouse_path, elsewhere.warehouse_path) == {}


def test_each_planted_double_report_is_counted_once(built):
    ledger = read_ledger(built.home)
    assert len(ledger) >= 3, "too few planted pairs for the test to mean anything"
    assert {e["kind"] for e in ledger} == {"cross_border_double_report"}
    planted = {(e["original_record_id"], e["double_report_record_id"]) for e in ledger}
    path = built.warehouse_path
    pairs = rows_in_zone(
        path,
        "UTC",
        "select original_record_id, double_report_record_id from intermediate.int_incidents__cross_border_pairs",
    )
    assert set(pairs) == planted and len(pairs) == len(planted)
    flagged = rows_in_zone(
        path,
        "UTC",
        "select record_id from intermediate.int_incidents__double_reports_flagged where is_double_report",
    )
    assert {r for (r,) in flagged} == {copy for _, copy in planted}
    (incidents,) = rows_in_zone(path, "UTC", "select count(*) from fct_incidents")[0]
    counted, excluded = rows_in_zone(
        path, "UTC", "select sum(incidents), sum(double_reports_excluded) from mart_incident_trends"
    )[0]
    assert excluded == len(planted)
    assert counted == incidents - len(planted)  # both reports of an event: counted once
