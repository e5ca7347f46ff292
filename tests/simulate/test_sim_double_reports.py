"""The simulator's cross-border double reports, read back from the native files: each listed pair is one
incident in both sides' exports, within the warehouse rule's distance and window, clean, and not a defect."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from sim_native import ledger, parse_time, read_feed
from sim_runs import run_simulation

from pingan_sim.double_reports import KIND, read_ledger
from pingan_sim.reference import load_reference

START, END = date(2025, 3, 1), date(2025, 3, 2)
PREFIX = {"310118": "qingpu_110_incidents", "320509": "wujiang_incidents", "330421": "jiashan_incidents"}
FIELDS = {  # (time, category code, town, lat, lon) in each feed's own names
    "qingpu_110_incidents": ("报警时间", "警情类别代码", "所属镇街", "纬度", "经度"),
    "wujiang_incidents": ("reported_at", "category_code", "town", "latitude", "longitude"),
    "jiashan_incidents": ("接警时间", "警情类型代码", "镇街", "纬度", "经度"),
}
REF = load_reference()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_simulation(tmp_path_factory.mktemp("doubles") / "home", start=START, end=END, scale=0.3)


def metres(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371000 * math.asin(math.sqrt(a))


def find(home, record_id: str, day: str):
    jurisdiction, source_id = record_id.split(":", 1)
    feed = PREFIX[jurisdiction]
    rows = [r for r in read_feed(home, feed, date.fromisoformat(day)) if r.record_id == source_id]
    assert len(rows) == 1, f"{record_id} is not once in {feed}'s file of {day}"
    time, code, town, lat, lon = (rows[0].fields[k] for k in FIELDS[feed])
    category = {c.code: c.category for c in REF.codes(feed)}[code]
    return feed, parse_time(time), category, town, float(lat), float(lon)


def test_each_listed_pair_is_one_incident_on_both_sides_of_a_border(run):
    pairs = read_ledger(run.home)
    assert len(pairs) >= 5, "too few pairs to mean anything"
    assert {e["kind"] for e in pairs} == {KIND}
    assert {e["double_report_feed"] for e in pairs} == {"wujiang_incidents", "jiashan_incidents"}
    for e in pairs:
        _, t1, cat1, town1, lat1, lon1 = find(run.home, e["original_record_id"], e["date"])
        feed2, t2, cat2, town2, lat2, lon2 = find(run.home, e["double_report_record_id"], e["date"])
        assert feed2 == e["double_report_feed"]
        assert cat1 == cat2, e  # different codes of the two systems, one harmonised category
        assert timedelta(minutes=1) <= t2 - t1 <= timedelta(minutes=21), e  # Jiashan keeps minutes
        assert metres(lat1, lon1, lat2, lon2) <= 500, e
        for jurisdiction, town in (("310118", town1), (e["double_report_record_id"][:6], town2)):
            towns = REF.towns[jurisdiction]
            assert towns.is_border[towns.names.index(town)], f"{town} is not a border town: {e}"


def test_double_reports_are_neither_defects_nor_defective(run):
    defects = {(d["feed"], d["record_id"]) for d in ledger(run.home) if d["record_id"]}
    for e in read_ledger(run.home):
        for record_id in (e["original_record_id"], e["double_report_record_id"]):
            feed = PREFIX[record_id[:6]]
            assert (feed, record_id.split(":", 1)[1]) not in defects, e


def test_a_day_simulated_alone_plants_the_same_pairs(run, tmp_path):
    alone = run_simulation(tmp_path / "home", start=END, end=END, scale=0.3)
    of_end = [e for e in read_ledger(run.home) if e["date"] == END.isoformat()]
    assert read_ledger(alone.home) == of_end
