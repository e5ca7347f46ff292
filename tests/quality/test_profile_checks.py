"""The profile checks judge a delivery against its feed's own history: each finding names the feed, the
day, the check, the expected range and the observed value; a feed may turn a check into a warning (with
a reason), an accepted day only warns, and a feed with little history applies only the absolute checks."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from pingan.core.feed_spec import OptionalColumn, load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan.quality.profile import DayProfile, compute_day_profile, mean_hour
from pingan.quality.profile_checks import Delivery, best_shift, judge_delivery, poisson_quantiles

SPEC = load_specs(PROJECT_ROOT / "connectors")["qingpu_110_incidents"]
DAY = date(2025, 3, 31)  # a Monday
# the 110 rhythm: a trough at 04:00, the peak in the evening (events per hour of a usual day)
RHYTHM = [32, 24, 18, 13, 10, 11, 17, 28, 39, 44, 46, 47, 46, 45, 46, 48, 50, 53, 58, 62, 63, 60, 52, 41]


def day_profile(day: date, rows: int = 1000, **kw) -> DayProfile:
    base = dict(
        feed=SPEC.feed,
        load_date=day,
        batch_id=f"b{day:%m%d}",
        weekday=day.weekday(),
        rows_read=rows,
        rows_written=rows,
        null_share={"arrived_at": 0.05, "address": 0.0},
        event_column="reported_at",
        event_histogram=RHYTHM,
        event_rows=sum(RHYTHM),
        source_sha256=[f"{day:%Y%m%d}" * 4],
        ids_sampled=False,
        id_hashes=[f"{day:%m%d}{i:012x}" for i in range(200)],
    )
    return DayProfile(**(base | kw))


def history(n: int = 28) -> list[DayProfile]:
    return [day_profile(DAY - timedelta(days=i), rows=1000 + (i % 7) * 10) for i in range(n, 0, -1)]


def judge(new: DayProfile, hist=None, *, spec=SPEC, columns=None, new_columns=(), accepted=None):
    hist = history() if hist is None else hist
    delivery = Delivery(new, list(columns or spec.columns), list(new_columns))
    return judge_delivery(spec, delivery, hist, hist, accepted=accepted)


def only(verdict, check):
    found = [f for f in verdict.findings if f.check == check]
    assert len(found) == 1, verdict.findings
    return found[0]


def test_a_usual_day_passes():
    verdict = judge(day_profile(DAY, rows=1010))
    assert not verdict.learning and verdict.findings == []


@pytest.mark.parametrize(
    ("rows", "hint"), [(500, "truncated"), (100, "truncated"), (10_000, "several times")]
)
def test_volume_outside_the_band_blocks_with_range_and_observed(rows, hint):
    finding = only(judge(day_profile(DAY, rows=rows)), "volume")
    assert finding.action == "block"
    assert f"{SPEC.feed} {DAY}: volume: expected" in finding.message
    assert f"observed {rows:,} rows" in finding.message and hint in finding.message
    assert "Mondays" in finding.expected


def test_small_counts_use_exact_poisson_limits():
    low, high = poisson_quantiles(16, 3.17e-5)
    assert 0 < low <= 4 and 30 <= high <= 40  # a normal approximation would give low = 0
    assert poisson_quantiles(3, 3.17e-5)[0] == 0


def test_a_dropped_column_blocks_as_missing_and_as_null_share():
    present = [c for c in SPEC.columns if c != "到达时间"]
    verdict = judge(day_profile(DAY, null_share={"arrived_at": 1.0, "address": 0.0}), columns=present)
    missing = only(verdict, "missing_column")
    assert "到达时间" in missing.expected and "columns present" in missing.observed
    null = only(verdict, "null_share")
    assert "arrived_at" in null.expected and null.observed == "100% null" and null.action == "block"


def test_a_renamed_column_names_the_new_one():
    present = [c for c in SPEC.columns if c != "到达时间"] + ["到场时间"]
    finding = only(judge(day_profile(DAY), columns=present, new_columns=["到场时间"]), "missing_column")
    assert "renamed?" in finding.hint and "到场时间" in finding.hint


def test_an_optional_column_may_be_missing():
    spec = SPEC.model_copy(
        update={
            "columns": SPEC.columns
            | {
                "到达时间": SPEC.columns["到达时间"].model_copy(
                    update={"optional": OptionalColumn(reason="x" * 12)}
                )
            }
        }
    )
    present = [c for c in SPEC.columns if c != "到达时间"]
    verdict = judge(day_profile(DAY), spec=spec, columns=present)
    assert not [f for f in verdict.findings if f.check == "missing_column"]


def test_a_new_column_only_warns():
    finding = only(judge(day_profile(DAY), new_columns=["备注"]), "new_column")
    assert finding.action == "warn"


def test_yesterdays_file_again_blocks_naming_the_day():
    yesterday = DAY - timedelta(days=1)
    finding = only(judge(day_profile(DAY, source_sha256=[f"{yesterday:%Y%m%d}" * 4])), "repeat_content")
    assert finding.action == "block" and str(yesterday) in finding.observed and "sha256" in finding.observed


def test_yesterdays_records_again_block_by_overlap():
    yesterday = DAY - timedelta(days=1)
    ids = [f"{yesterday:%m%d}{i:012x}" for i in range(200)]
    finding = only(judge(day_profile(DAY, id_hashes=ids)), "repeat_content")
    assert f"100% of them committed on {yesterday}" in finding.observed


@pytest.mark.parametrize(("hours", "word"), [(-8, "early: a UTC export"), (8, "late: local times labelled")])
def test_a_shifted_clock_blocks_naming_the_zone_mistake(hours, word):
    moved = [RHYTHM[(h - hours) % 24] for h in range(24)]
    finding = only(judge(day_profile(DAY, event_histogram=moved)), "event_shift")
    assert finding.action == "block" and f"{abs(hours)} h {word}" in finding.hint
    assert best_shift(moved, RHYTHM)[0] == hours


def test_a_flat_rhythm_never_looks_shifted():
    flat = [40] * 24
    hist = [day_profile(DAY - timedelta(days=i), event_histogram=flat) for i in range(28, 0, -1)]
    verdict = judge(day_profile(DAY, event_histogram=[40 + (h % 3) for h in range(24)]), hist)
    assert not [f for f in verdict.findings if f.check == "event_shift"]


def test_learning_feed_applies_only_absolute_checks():
    verdict = judge(day_profile(DAY, rows=10), history(3))
    assert verdict.learning and verdict.history_days == 3
    assert not [f for f in verdict.findings if f.check == "volume"]
    yesterday = DAY - timedelta(days=1)
    stale = judge(day_profile(DAY, source_sha256=[f"{yesterday:%Y%m%d}" * 4]), history(3))
    assert only(stale, "repeat_content").action == "block"


def test_a_feed_may_declare_a_check_a_warning_and_an_accepted_day_only_warns():
    spec = SPEC.model_copy(update={"profile": SPEC.profile.model_copy(update={"warn": ["volume"]})})
    assert only(judge(day_profile(DAY, rows=100), spec=spec), "volume").action == "warn"
    finding = only(judge(day_profile(DAY, rows=100), accepted="the district merged two stations"), "volume")
    assert finding.action == "warn" and "accepted: the district merged two stations" in finding.message


def test_a_feed_file_overriding_the_profile_needs_a_reason(tmp_path):
    from pingan.core.feed_spec import SpecError, load_spec

    text = (PROJECT_ROOT / "connectors/incidents/qingpu.yaml").read_text("utf-8")
    path = tmp_path / "f.yaml"
    path.write_text(text + "profile: {volume_low: 0.3}\n", "utf-8")
    with pytest.raises(SpecError, match="reason"):
        load_spec(path)
    path.write_text(text + "profile: {volume_low: 0.3, reason: a district that reports in bursts}\n", "utf-8")
    assert load_spec(path).profile.volume_low == 0.3


def test_day_profile_from_rows_keeps_no_identifiers_and_is_repeatable():
    from pingan.core.canonical import entity_schema

    n = 3000
    start = datetime(2025, 3, 31, 0, 0).timestamp()
    rows = {
        "record_id": [f"310118:QP{i:06d}" for i in range(n)],
        "reported_at": [datetime.fromtimestamp(start + 29 * i) for i in range(n)],
        "town": ["金泽镇" if i % 2 else "朱家角镇" for i in range(n)],
        "caller_phone": [f"138{i:08d}" for i in range(n)],
    }
    schema = entity_schema("incident")
    table = pa.table({f.name: pa.array(rows.get(f.name, [None] * n), f.type) for f in schema}, schema=schema)
    one = compute_day_profile(SPEC, DAY, "b1", table, rows_read=n, sources=[], missing_columns=[])
    two = compute_day_profile(SPEC, DAY, "b1", table, rows_read=n, sources=[], missing_columns=[])
    assert one == two
    assert one.ids_sampled and 0 < len(one.id_hashes) < n / 8
    assert one.domain["town"] == ["朱家角镇", "金泽镇"] and "caller_phone" not in one.domain
    assert not any("QP0" in h or "138" in h[:3] for h in one.id_hashes)
    assert sum(one.event_histogram) == n and one.null_share["arrived_at"] == 1.0
    assert mean_hour([0] * 23 + [10]) == pytest.approx(23.5)


def test_the_profile_read_column_by_column_from_the_batch_file_equals_the_whole_table(tmp_path):
    """The load profiles the raw file from its statistics and a few columns; a rebuild profiles the whole
    table: both give the same day (several row groups, nulls, a low-cardinality column, sampled ids)."""
    import pyarrow.parquet as pq

    from pingan.core.canonical import entity_schema
    from pingan.core.storage import Store
    from pingan.quality.profile import DISTINCT_SAMPLE
    from pingan.quality.profile_input import from_batch_file

    n = 30_000
    start = datetime(2025, 3, 31, 0, 0).timestamp()
    rows = {
        "record_id": [f"310118:QP{i:06d}" for i in range(n)],
        "reported_at": [datetime.fromtimestamp(start + 3 * i) for i in range(n)],
        "town": ["金泽镇" if i % 3 else None for i in range(n)],
        "category": [f"c{i % 7}" if i < 25_000 else f"late{i % 30}" for i in range(n)],
    }
    schema = entity_schema("incident")
    table = pa.table({f.name: pa.array(rows.get(f.name, [None] * n), f.type) for f in schema}, schema=schema)
    pq.write_table(table, tmp_path / "part.parquet", row_group_size=7_000)
    from_file = from_batch_file(Store(f"file://{tmp_path}"), "part.parquet", DISTINCT_SAMPLE)
    assert from_file.num_rows == n and from_file.head.num_rows == DISTINCT_SAMPLE
    args = {"rows_read": n, "sources": [], "missing_columns": []}
    whole = compute_day_profile(SPEC, DAY, "b1", table, **args)
    assert compute_day_profile(SPEC, DAY, "b1", from_file, **args) == whole
    assert whole.null_share["town"] == pytest.approx(1 / 3, abs=1e-4)


def test_a_column_the_feed_never_delivered_does_not_block():
    present = [c for c in SPEC.columns if c != "到达时间"]
    never = [day_profile(DAY - timedelta(days=i), missing_columns=["到达时间"]) for i in range(28, 0, -1)]
    assert not judge(day_profile(DAY), never, columns=present).findings
    assert not judge(day_profile(DAY), [], columns=present).findings


@pytest.mark.parametrize("share", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_the_overlap_of_large_days_is_estimated_from_a_probe_within_two_points(share):
    """Days of 60,000 ids: the overlap is measured on a probe of the new day's smallest hashes and the other
    day's ids up to the probe's largest, and stays within two points of the exact share."""
    import hashlib
    import random

    from pingan.quality.profile_checks import IdSets

    def h(i: int) -> str:
        return hashlib.sha256(str(i).encode()).hexdigest()[:16]

    n = 60_000
    rng = random.Random(7)
    shared = set(rng.sample(range(n), int(share * n)))
    new_ids = sorted(h(i) for i in range(n))
    old_ids = sorted(h(i) if i in shared else h(n + i) for i in range(n))
    new = day_profile(DAY, id_hashes=new_ids)
    old = day_profile(DAY - timedelta(days=1), id_hashes=old_ids)
    assert IdSets().overlap(new, old) == pytest.approx(share, abs=0.02)


GRID = load_specs(PROJECT_ROOT / "connectors")["jiashan_grid_events"]  # five stage columns melted


def grid_history() -> list[DayProfile]:
    rows = [119, 116, 100, 97, 109, 122, 94, 136, 98, 123, 107, 87, 73, 104]  # the soak's stage rows
    return [
        day_profile(DAY - timedelta(days=i), rows=rows[i % len(rows)], feed=GRID.feed, event_histogram=[])
        for i in range(28, 0, -1)
    ]


@pytest.mark.parametrize(("rows", "blocked"), [(55, False), (240, False), (10, True), (900, True)])
def test_a_melted_feed_is_judged_by_the_noise_of_its_records(rows, blocked):
    """A quiet day of 18 grid events is 55 stage rows: a record's stages come together, so its noise is
    that of the records (the soak blocked it when each row counted alone); a 90% cut still blocks."""
    verdict = judge(
        day_profile(DAY, rows=rows, feed=GRID.feed, event_histogram=[]), grid_history(), spec=GRID
    )
    assert [f.check for f in verdict.blocking if f.check == "volume"] == (["volume"] if blocked else [])


def test_an_empty_delivery_is_never_a_repeat_of_another_empty_day():
    """Every empty file hashes alike; an empty day is the empty-batch rule's to judge."""
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    hist = history()[:-1] + [
        day_profile(DAY - timedelta(days=1), rows=0, source_sha256=[empty], id_hashes=[])
    ]
    verdict = judge(day_profile(DAY, rows=0, source_sha256=[empty], id_hashes=[]), hist)
    assert "repeat_content" not in [f.check for f in verdict.findings]
    full = judge(day_profile(DAY, rows=1000, source_sha256=hist[0].source_sha256), hist)
    assert "repeat_content" in [f.check for f in full.findings]  # a file with rows still repeats


def test_a_day_that_looks_a_few_hours_off_is_not_a_zone_mistake():
    """Only a move of five hours or more is judged: a normal day of sixty incidents can look 4 h early
    (the soak blocked one), a zone mistake here is eight."""
    moved = RHYTHM[4:] + RHYTHM[:4]  # the usual rhythm 4 h early, at full size
    assert not judge(day_profile(DAY, event_histogram=moved, event_rows=sum(moved))).findings
    moved = RHYTHM[8:] + RHYTHM[:8]
    assert only(judge(day_profile(DAY, event_histogram=moved, event_rows=sum(moved))), "event_shift")


def test_a_night_reads_only_the_profiles_within_its_window(tmp_path):
    """The profile stage reads the days within `repeat_days` of the night, chosen by key name, not every day."""
    from pingan.core.storage import Store
    from pingan.quality.profile import day_profiles, store_day_profile

    lake = Store((tmp_path / "lake").as_uri())
    lake.ensure()
    night = date(2027, 3, 1)
    stored = [night - timedelta(days=d) for d in (1, 200, 366, 367, 700)]
    for day in stored:
        store_day_profile(lake, DayProfile(feed="f", load_date=day, batch_id=f"b{day}", weekday=day.weekday(),
                                           rows_read=1, rows_written=1))  # fmt: skip
    assert [p.load_date for p in day_profiles(lake, "f", night, 366)] == sorted(stored[:3])
    assert len(day_profiles(lake, "f")) == 5  # without a window: every stored day
    assert load_specs(PROJECT_ROOT / "connectors")["qingpu_110_incidents"].profile.repeat_days == 366
