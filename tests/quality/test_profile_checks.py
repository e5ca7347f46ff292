"""The profile checks on made-up histories: what blocks, what a quiet day or a learning feed gets away with."""

from __future__ import annotations

from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan.quality.profile import DayProfile
from pingan.quality.profile_checks import judge_profile

SPEC = load_specs(PROJECT_ROOT / "connectors")["qingpu_110_incidents"]


def day(i: int, rows: int = 1400, offset: float = 13.0, nulls: float = 0.02, **kw) -> DayProfile:
    return DayProfile(
        "qingpu_110_incidents", f"2025-03-{i:02d}", i % 7, rows, {"arrived_at": nulls}, offset, 20.0,
        kw.get("sha", [f"sha-{i}"]), kw.get("ids", [f"id-{i}-{n}" for n in range(100)]),
    )  # fmt: skip


HISTORY = [day(i) for i in range(1, 15)]


def checks(today: DayProfile, past=HISTORY) -> list[str]:
    return [f.check for f in judge_profile(SPEC, today, past)]


def test_an_ordinary_day_passes():
    assert checks(day(15, rows=1310, offset=12.4, nulls=0.03)) == []


def test_half_a_file_ninety_percent_fewer_and_ten_times_the_rows_block():
    assert checks(day(15, rows=687)) == ["profile_volume"]
    assert checks(day(15, rows=140)) == ["profile_volume"]
    assert checks(day(15, rows=14000)) == ["profile_volume"]


def test_a_quiet_small_feed_does_not_cry_wolf():
    small = [day(i, rows=3) for i in range(1, 15)]
    assert checks(day(15, rows=0), small) == [] and checks(day(15, rows=9), small) == []
    assert checks(day(15, rows=600), small) == ["profile_volume"]  # a flood still says something


def test_a_column_gone_empty_blocks_naming_it():
    findings = judge_profile(SPEC, day(15, nulls=1.0), HISTORY)
    assert [f.check for f in findings] == ["profile_null_share"]
    assert "arrived_at" in findings[0].expected and findings[0].observed == "100%"


def test_a_zone_mistake_blocks_and_names_the_likely_cause():
    findings = judge_profile(SPEC, day(15, offset=5.0), HISTORY)
    assert [f.check for f in findings] == ["profile_time_shift"] and "UTC" in findings[0].observed


def test_a_catch_up_delivery_spanning_two_days_is_not_a_shift():
    late = day(15, offset=-2.0)
    late.event_span_hours = 40.0
    assert checks(late) == []


def test_yesterdays_file_again_blocks_by_hash_and_by_ids_even_while_learning():
    learning = HISTORY[-2:]
    assert checks(day(15, sha=["sha-14"]), learning) == ["profile_repeat"]
    assert checks(day(15, ids=[f"id-14-{n}" for n in range(100)]), learning) == ["profile_repeat"]
    assert checks(day(15, rows=10), learning) == []  # too little history for the volume check


def test_a_small_days_median_wanders_without_a_block_and_empty_days_are_no_repeat():
    small = [day(i, rows=70) for i in range(1, 15)]
    assert checks(day(15, rows=74, offset=9.1), small) == []  # 3.9 h off on 74 calls: noise, not a zone
    assert checks(day(15, rows=74, offset=5.0), small) == []  # too few rows to tell a zone from noise
    assert checks(day(15, offset=5.0)) == ["profile_time_shift"]  # 1,400 rows: a zone shows
    empty = [day(i, rows=0, sha=["sha-of-nothing"]) for i in range(1, 15)]
    assert checks(day(15, rows=0, sha=["sha-of-nothing"]), empty) == []
