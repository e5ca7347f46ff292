"""Every feed in its native format, as docs/source_systems.md specifies, with realistic content."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta

import numpy as np
import openpyxl
import pytest
from sim_native import in_delta, ledger, read_feed
from sim_runs import START
from stdnum.cn import uscc

from pingan.core.storage import Store
from pingan_sim import FEEDS, incidents
from pingan_sim.context import RunContext
from pingan_sim.reference import load_reference

REF = load_reference()
TOWNS = {j: set(t.names) for j, t in REF.towns.items()}
GRIDS = {j: set(t.grid_ids.tolist()) for j, t in REF.towns.items()}


def lines(path, newline=b"\r\n"):
    return path.read_bytes().split(newline)


def test_qingpu_110_is_gb18030_with_chinese_headers_and_local_seconds(sim):
    day = sim.days[0]
    path = sim.home / f"sim/qingpu/110/110接处警_{day:%Y%m%d}.csv"
    head = lines(path)[0]
    with pytest.raises(UnicodeDecodeError):
        head.decode("utf-8")  # really GB18030, not UTF-8
    assert head.decode("gb18030").split(",") == [
        "接警编号",
        "报警时间",
        "派警时间",
        "到达时间",
        "结案时间",
        "警情类别代码",
        "警情类别",
        "所属镇街",
        "网格编号",
        "经度",
        "纬度",
        "发生地址",
        "处警单位",
        "处理结果",
        "报警人电话",
        "涉事人身份证号",
    ]
    records = [
        r for r in read_feed(sim.home, "qingpu_110_incidents", day) if r.complete and r.encoding == "gb18030"
    ]
    assert records
    for r in records:
        f = r.fields
        if f["接警编号"]:
            assert re.fullmatch(rf"QP110{day:%Y%m%d}\d{{6}}", f["接警编号"])
        for col in ("报警时间", "派警时间", "到达时间", "结案时间"):
            assert f[col] is None or re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", f[col])
        assert f["所属镇街"] is None or f["所属镇街"] in TOWNS["310118"]
        assert f["网格编号"] in GRIDS["310118"]
        assert re.fullmatch(r"1\d{10}", f["报警人电话"])


def test_jiashan_incidents_are_utf8_with_bom_and_minute_times(sim):
    day = sim.days[1]
    raw = (sim.home / f"sim/jiashan/incidents/jiashan_jq_{day:%Y%m%d}.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw[3:].split(b"\r\n")[0].decode("utf-8").split(",")[:6] == [
        "警情编号",
        "接警时间",
        "派警时间",
        "到场时间",
        "办结时间",
        "警情类型代码",
    ]
    for r in read_feed(sim.home, "jiashan_incidents", day):
        if r.complete and r.fields["接警时间"]:
            assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d", r.fields["接警时间"])
            assert r.fields["网格"] in GRIDS["330421"]


def test_wujiang_jsonl_is_in_the_landing_store_in_utc(sim):
    keys = sim.landing.list("wujiang/incidents/")
    assert keys == [f"wujiang/incidents/dt={d}/incidents_{d:%Y%m%d}.jsonl" for d in sim.days]
    fields = [
        "incident_no",
        "category_code",
        "reported_at",
        "dispatched_at",
        "arrived_at",
        "closed_at",
        "town",
        "grid",
        "latitude",
        "longitude",
        "address",
        "unit",
        "result",
        "caller_mobile",
        "involved_ids",
    ]
    for day, key in zip(sim.days, keys, strict=True):
        for line in sim.landing.get_bytes(key).decode("utf-8").splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # the truncated file's last line
            assert list(obj) == fields
            assert isinstance(obj["involved_ids"], list)
            if obj["reported_at"]:
                assert obj["reported_at"].endswith("Z")
                local = datetime.fromisoformat(obj["reported_at"][:-1]) + timedelta(hours=8)
                assert local.date() == day  # a local day's calls, written in UTC


def test_jiashan_grid_workbook_has_sheet_and_excel_datetimes(sim):
    day = sim.days[2]
    wb = openpyxl.load_workbook(sim.home / f"sim/jiashan/grid/网格事件_{day:%Y%m%d}.xlsx")
    assert wb.sheetnames == ["网格事件"]
    rows = list(wb["网格事件"].iter_rows(values_only=True))
    assert list(rows[0]) == [
        "事件编号",
        "事件类型",
        "网格编号",
        "所属镇街",
        "是否跨界",
        "当事人",
        "事件地址",
        "处置单位",
        "上报时间",
        "会商时间",
        "处置时间",
        "反馈时间",
        "长效跟踪时间",
    ]
    assert len(rows) > 1
    for row in rows[1:]:
        assert row[4] in ("是", "否") and row[2] in GRIDS["330421"]
        stages = [v for v in row[8:] if v is not None]
        assert all(isinstance(v, datetime) for v in stages)
        assert any(v.date() == day for v in stages)  # updated that day
        assert all(v < datetime.combine(day + timedelta(days=1), datetime.min.time()) for v in stages)


def test_tax_registry_table_and_history(sim):
    con = sqlite3.connect(sim.home / "sim/qingpu/tax_registry.sqlite")
    cols = [r[1] for r in con.execute("PRAGMA table_info(tax_registration)")]
    assert cols == [
        "nsrsbh",
        "nsrmc",
        "fddbr_xm",
        "fddbr_sfzh",
        "hy_dm",
        "scjydz",
        "jd_mc",
        "djzt",
        "nsxydj",
        "updated_at",
    ]
    rows = con.execute(
        "SELECT nsrsbh, jd_mc, djzt, nsxydj, updated_at, hy_dm FROM tax_registration"
    ).fetchall()
    con.close()
    start = START.isoformat()
    before = [r for r in rows if r[4] < start]
    assert len(before) > 0.9 * len(rows) and len(rows) > len(before)  # most predate the run
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[4]) for r in rows)
    assert {r[1] for r in rows} <= TOWNS["310118"]
    assert {r[2] for r in rows} - {None} <= {"正常", "非正常户", "注销"}
    assert {r[3] for r in rows} <= set("ABMCD")
    assert all(re.fullmatch(r"[A-T]\d{4}", r[5]) for r in rows)


def test_the_same_enterprises_appear_in_registry_inspections_and_alarms(sim):
    con = sqlite3.connect(sim.home / "sim/qingpu/tax_registry.sqlite")
    registry = {r[0] for r in con.execute("SELECT nsrsbh FROM tax_registration")}
    con.close()
    for feed in ("qingpu_fire_inspections", "qingpu_fire_alarms"):
        seen = {
            r.fields["unitUscc"]
            for d in sim.days
            for r in read_feed(sim.home, feed, d)
            if r.fields.get("unitUscc") and uscc.is_valid(r.fields["unitUscc"])
        }
        assert seen and len(seen & registry) >= 0.95 * len(seen), feed


def test_fire_files_hold_what_the_api_serves(sim):
    day = sim.days[0]
    inspection = json.loads((sim.home / f"sim/qingpu/fire/inspections_{day:%Y%m%d}.jsonl").open().readline())
    assert list(inspection) == [
        "inspectionId",
        "unitUscc",
        "unitName",
        "inspectionDate",
        "hazardsFound",
        "hazardsRectified",
        "rectifyDeadline",
        "townName",
        "inspector",
        "updatedAt",
    ]
    alarms = [
        json.loads(x)
        for x in (sim.home / f"sim/qingpu/fire/alarms_{day:%Y%m%d}.jsonl").read_text().splitlines()
    ]
    assert list(alarms[0]) == [
        "alarmId",
        "deviceId",
        "unitUscc",
        "alarmType",
        "raisedAt",
        "confirmedAt",
        "handledAt",
        "isTrueAlarm",
        "townName",
        "updatedAt",
    ]
    assert all(
        a["updatedAt"].startswith(day.isoformat()) and a["updatedAt"].endswith("+08:00") for a in alarms
    )
    assert all(isinstance(a["isTrueAlarm"], bool) for a in alarms)
    assert 0 < sum(a["isTrueAlarm"] for a in alarms) < 0.3 * len(alarms)


def test_grid_event_stages_continue_in_later_days_files(sim):
    by_day = {d: read_feed(sim.home, "qingpu_grid_events", d) for d in sim.days}
    first = {r.record_id for r in by_day[sim.days[0]] if r.complete and r.fields["stage"] == "发现"}
    later = {r.record_id for d in sim.days[1:] for r in by_day[d] if r.complete}
    assert first & later
    for records in by_day.values():
        for r in records:
            if r.complete:
                assert r.fields["stage"] in ("发现", "派单", "核查", "处置", "结案", "反馈")
                assert isinstance(r.fields["cross_border"], bool)
                assert r.fields["town"] is None or r.fields["town"] in TOWNS["310118"]
                if r.fields["cross_border"]:
                    assert r.fields["town"] in {"金泽镇", "练塘镇", "朱家角镇"}


def test_joint_operations_name_records_on_both_sides(sim):
    records = [r for d in sim.days for r in read_feed(sim.home, "pinghu_jinshan_joint_operations", d)]
    assert records
    for r in records:
        f = r.fields
        assert f["pinghu_town"] in TOWNS["330482"] and f["jinshan_town"] in TOWNS["310116"]
        ids = (f["linked_ids"] or "").split(";") if f["linked_ids"] else []
        assert all(re.fullmatch(r"(330482|310116):\w+", x) for x in ids)
        if len(ids) >= 2:
            assert {x[:6] for x in ids} == {"330482", "310116"}


def test_summary_counts_match_the_returned_counts_and_the_ledger(sim):
    summary = json.loads((sim.home / "sim/_summary.json").read_text("utf-8"))
    for feed in FEEDS:
        if feed != "qingpu_tax_registry":
            assert sum(summary["rows"][feed].values()) == sim.counts[feed]
            assert set(summary["rows"][feed]) == {d.isoformat() for d in sim.days}
    dups = Counter((e["feed"], e["date"]) for e in ledger(sim.home) if e["kind"] == "duplicate_delivery")
    for feed, per_day in summary["duplicates"].items():
        for day, n in per_day.items():
            assert dups[(feed, day)] == n
    notes = summary["notes"]["qingpu_tax_registry"]
    assert sim.counts["qingpu_tax_registry"] == notes["enterprises"] == 1000
    # one row per enterprise as of the first day, then one per later change
    assert notes["table_rows"] == 1000 + sum(
        n for d, n in notes["changes"].items() if d > sim.start.isoformat()
    )


# --- realism of the calls themselves, on a week at full scale (generation only, no files) -----------------


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    home = tmp_path_factory.mktemp("calls")
    ctx = RunContext(home, Store(f"file://{home}"), REF, date(2024, 4, 1), date(2024, 4, 28), 3, 1.0, 0.0)
    return [incidents.generate(ctx, incidents.QINGPU, d) for d in ctx.days()]


def test_calls_have_a_night_trough_an_evening_peak_and_busier_weekends(calls):
    hours = Counter(int(h) for f in calls for h in (f["reported"].astype("datetime64[h]").astype(int) % 24))
    assert hours[4] * 4 < hours[20]
    per_day = [len(f["id"]) for f in calls]  # 2024-04-01 is a Monday
    weekend = np.mean([n for i, n in enumerate(per_day) if i % 7 >= 5])
    weekday = np.mean([n for i, n in enumerate(per_day) if i % 7 < 5])
    assert weekend > 1.05 * weekday
    assert 1300 < np.mean(per_day) < 1800


def test_most_arrivals_take_three_to_eight_minutes(calls):
    minutes = np.concatenate(
        [(f["arrived"] - f["dispatched"]).astype(float)[~np.isnat(f["arrived"])] / 60 for f in calls]
    )
    assert np.mean((minutes >= 3) & (minutes <= 8)) > 0.75
    assert 0.3 < np.mean(minutes <= 5) < 0.8  # the "within five minutes" KPI has something to measure


def test_calls_are_near_their_town_centres_inside_the_delta(calls):
    towns = REF.towns["310118"]
    for f in calls[:3]:
        idx = np.array([towns.names.index(t) for t in f["town"]])
        assert np.all(np.abs(f["lat"] - towns.lat[idx]) < 0.1) and np.all(
            np.abs(f["lon"] - towns.lon[idx]) < 0.12
        )
        assert all(in_delta(a, b) for a, b in zip(f["lat"], f["lon"], strict=True))
