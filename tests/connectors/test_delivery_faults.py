"""Every delivery fault, on every feed it can happen to, loaded over a good day with a week of history: a
broken delivery, or one that parses but is not the day it claims to be, is blocked (or fails) and the good
day stays the truth, with a cause naming feed, day, check, expected and observed; a broken row is
quarantined with its rule, or cleaned; a format edge loads exactly like the clean file. After a clean
redelivery the raw zone and the feed's profile equal a clean load's."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pingan import raw_zone
from pingan.core import audit
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed
from pingan.ops.status import collect_status
from pingan.orchestration.pipeline import quality_gate, sources_for
from pingan.quality import profile as profiles
from pingan.quality.batch_rules import judge_batch
from pingan_sim.delivery_faults import (
    BATCH_FAULTS,
    FAULTS,
    FORMAT_EDGES,
    PROFILE_FAULTS,
    NotApplicable,
    deliver_fault,
    restore_delivery,
)

pytestmark = pytest.mark.slow  # a few minutes: every feed, every fault
DAY = date(2025, 3, 10)  # a Monday
HISTORY = 8  # committed days before DAY: more than the profile's learning_days
SPECS = load_specs(PROJECT_ROOT / "connectors")
CASES = [(f, k) for f in sorted(SPECS) for k in FAULTS]
CLEANED = (*FORMAT_EDGES, "full_width_id", "lowercase_check_x")  # loaded as if the fault were not there
# Counting faults need enough rows to tell a cut delivery from a quiet day (a Poisson day of 16 rows
# may hold 8); the zone-shift faults need a feed with a daily rhythm and enough events to see it moved.
COUNTING = ("truncated_half", "rows_cut_90", "rows_10x")
SHIFTS = ("shift_plus_8h", "shift_minus_8h")
MIN_ROWS_FOR_COUNTS = 50
MIN_EVENTS_FOR_SHIFT = 150
MIN_RHYTHM = 2.0  # busiest hour / quietest hour of the history's hourly profile
VOLATILE = {"batch_id", "ingested_at", "source_file"}


@pytest.fixture(scope="module")
def history_home(tmp_path_factory) -> Path:
    """Simulated days up to DAY, the days before it loaded (no gate: the profile is what matters here)."""
    from pingan_sim import simulate

    home = tmp_path_factory.mktemp("faults-sim")
    landing = Store(f"file://{home / 'sim'}")  # the local deployment's landing root
    landing.ensure()
    simulate(home, landing, DAY - timedelta(days=HISTORY), DAY, seed=5, scale=0.2, defect_rate=0.02)
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, home)
        settings = load_settings()
        lake = Store(settings.lake_url)
        lake.ensure()
        with sources_for(settings):
            for spec in SPECS.values():
                for i in range(HISTORY, 0, -1):
                    ingest_feed(spec, DAY - timedelta(days=i), settings, lake)
    return home


def _isolate(mp, home: Path) -> None:
    mp.setenv("PINGAN_HOME", str(home))
    for var in (
        "PINGAN_LAKE_URL",
        "PINGAN_LANDING_URL",
        "PINGAN_S3_ENDPOINT",
        "PINGAN_QINGPU_FIRE_URL",
        "PINGAN_PINGHU_JINSHAN_URL",
        "PINGAN_QINGPU_FIRE_TOKEN",
        "PINGAN_QINGPU_TAX_DB_URL",
        "PINGAN_FAULT",
    ):
        mp.delenv(var, raising=False)


@pytest.fixture
def fault_home(history_home, tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    shutil.copytree(history_home, home)
    _isolate(monkeypatch, home)
    return home


def _load(settings, lake, spec):
    with sources_for(settings, [spec.feed]):  # fresh servers: they read the day's files anew
        return ingest_feed(spec, DAY, settings, lake, gate=quality_gate(settings))


def _stable(table) -> list[dict]:
    rows = (dict((k, v) for k, v in r.items() if k not in VOLATILE) for r in table.to_pylist())
    return sorted(rows, key=lambda r: r["record_id"])


def _skip_if_invisible(kind: str, spec, good, lake) -> None:
    """Counting and shift faults are statistics: skip the feeds too small or too even to show them."""
    if kind == "half_timestamps_reformatted" and good.rows_read < 10:
        pytest.skip(
            f"{spec.feed}: {good.rows_read} rows a day; half of them is a row fault, not a delivery's"
        )
    if kind in COUNTING and good.rows_read < MIN_ROWS_FOR_COUNTS:
        pytest.skip(
            f"{spec.feed}: {good.rows_read} rows a day; too few to tell a cut delivery from a quiet day"
        )
    if kind in SHIFTS:
        days = profiles.day_profiles(lake, spec.feed)
        hourly = [sum(h) for h in zip(*[d.event_histogram for d in days if d.event_histogram], strict=True)]
        if days[-1].event_rows < MIN_EVENTS_FOR_SHIFT or not hourly or max(hourly) < MIN_RHYTHM * min(hourly):
            pytest.skip(f"{spec.feed}: events too few or spread too evenly over the day to see a clock moved")


@pytest.mark.parametrize(("feed", "kind"), CASES)
def test_fault_over_a_good_day(feed, kind, fault_home):
    settings = load_settings()
    spec = SPECS[feed]
    lake = Store(settings.lake_url)
    good = _load(settings, lake, spec)
    assert good.status == "committed", good.manifest.error
    good_rows = _stable(lake.read_parquet(good.manifest.files.raw))
    landing = Store(settings.landing_url)
    try:
        entry = deliver_fault(fault_home, landing, spec, DAY, kind)
    except NotApplicable as exc:
        pytest.skip(str(exc))
    assert (fault_home / "sim" / "defects.jsonl").read_text("utf-8").count(f'"kind": "{kind}"') == 1
    _skip_if_invisible(kind, spec, good, lake)

    try:
        second = _load(settings, lake, spec)
    except Exception as exc:  # a load that fails (the file cannot be read) keeps the good day too
        second, failure = None, str(exc)
    current = raw_zone.committed_manifest_record(lake, feed, DAY)
    if kind in BATCH_FAULTS + PROFILE_FAULTS:
        assert current.batch_id == good.batch_id, "the good day stays the truth"
        assert lake.read_parquet(current.files.raw).num_rows == good.rows_written
        if second is None:
            assert failure, kind
            return
        assert second.status == "blocked", (second.quarantine_by_rule, second.manifest.quality)
        problem = collect_status(settings, lake)["feeds"][feed]["problem_days"][DAY.isoformat()]
        assert problem["status"] == "blocked" and problem["error"], problem
        profile_causes = [f.cause for f in second.manifest.quality.batch_failures]
        if any(f.rule.startswith("profile:") for f in second.manifest.quality.batch_failures):
            cause = next(c for c in profile_causes if c.startswith(f"{feed} {DAY}:"))
            assert "expected" in cause and "observed" in cause, cause
        return
    assert second is not None, failure
    _check_row_fault(kind, spec, second, good, good_rows, entry, lake, current)


def _check_row_fault(kind, spec, second, good, good_rows, entry, lake, current):
    if judge_batch(
        spec, second.rows_read, second.rows_quarantined, {}
    ):  # the broken rows are most of the day
        assert second.status == "blocked" and current.batch_id == good.batch_id
        return
    assert second.status == "committed", second.manifest.error
    q = lake.read_parquet(current.files.quarantine).to_pylist()
    loaded = lake.read_parquet(current.files.raw)
    rid = entry["record_id"]
    if kind in ("nul_in_record_id", "oversized_field"):
        rule = "control_character" if kind == "nul_in_record_id" else "oversized_field"
        hits = [r for r in q if r["rule"] == rule]
        assert hits, {r["rule"] for r in q}
        assert all(r["source_row"] and r["source_file"] for r in hits)
        if kind == "oversized_field":
            assert {r["source_record_id"].split(":")[0] for r in hits} == {rid}
            assert all(len(r["value"]) < 300 and "bytes)" in r["value"] for r in hits)
        assert second.rows_written == good.rows_written - len(hits)
    elif kind == "ten_rows_2035":
        hits = [r for r in q if r["rule"] == "event_time_outside_window"]
        assert hits and all("2035" in r["value"] for r in hits)
        assert second.rows_written == good.rows_written - len(hits)
    elif kind == "correction_file":
        conflicts = [r for r in q if r["rule"] == "conflicting_record"]
        unloaded = [
            r for r in q if r["rule"] == "duplicate_record" and "first delivery quarantined" in r["value"]
        ]
        # five records corrected (a melted record is one row per stage: its key's first part); one whose
        # first delivery was itself quarantined has nothing to conflict with
        corrected = {r["source_record_id"].split(":")[0] for r in conflicts + unloaded}
        assert len(corrected) == 5 and conflicts, {r["rule"] for r in q}
        assert all("differs in" in r["value"] for r in conflicts)
        assert second.rows_written == good.rows_written
    elif kind in CLEANED:  # the same records as the good day
        assert sorted(loaded["record_id"].to_pylist()) == sorted(r["record_id"] for r in good_rows)
        assert second.rows_quarantined == good.rows_quarantined
        if kind == "lowercase_check_x":
            column = next(c.name for c in spec.columns.values() if c.name == "involved_id_numbers")
            row = next(r for r in loaded.to_pylist() if r["source_record_id"] == rid)
            assert row[column].split(";")[0].endswith("X")
        if kind == "jsonl_bom":
            assert _stable(loaded) == good_rows
    else:
        raise AssertionError(f"no expectation for {kind}")


def test_clean_redelivery_after_a_block_equals_a_clean_load_and_profile_rebuilds(fault_home):
    """Yesterday's file again is blocked naming the day; the clean file then commits the same rows as
    the good load, and the feed's profile rebuilt from the committed batches equals the stored one."""
    settings = load_settings()
    spec = SPECS["qingpu_110_incidents"]
    lake = Store(settings.lake_url)
    landing = Store(settings.landing_url)
    good = _load(settings, lake, spec)
    good_rows = _stable(lake.read_parquet(good.manifest.files.raw))
    deliver_fault(fault_home, landing, spec, DAY, "redelivered_yesterday")
    blocked = _load(settings, lake, spec)
    assert blocked.status == "blocked"
    assert f"repeats {DAY - timedelta(days=1)}" in blocked.manifest.error
    restore_delivery(fault_home, landing, spec, DAY)
    again = _load(settings, lake, spec)
    assert again.status == "committed"
    assert _stable(lake.read_parquet(again.manifest.files.raw)) == good_rows
    stored = profiles.day_profiles(lake, spec.feed)
    assert profiles.rebuild_profile(lake, spec) == stored
    assert [p.batch_id for p in stored if p.load_date == DAY] == [again.batch_id]


def test_an_operator_accepts_an_unusual_day(fault_home):
    """Ten times the usual rows is blocked; `pingan accept` records who and why, loads the day with the
    profile checks only warning, and the profile learns it (the next such day is judged against it)."""
    from pingan.cli.app import main

    settings = load_settings()
    spec = SPECS["qingpu_110_incidents"]
    lake = Store(settings.lake_url)
    deliver_fault(fault_home, Store(settings.landing_url), spec, DAY, "rows_10x")
    blocked = _load(settings, lake, spec)
    assert blocked.status == "blocked" and "volume" in blocked.manifest.error
    quality = CliRunner().invoke(main, ["quality", "--feed", spec.feed])
    assert quality.exit_code == 1 and "volume: expected" in quality.output

    reason = "the district merged three stations into this export"
    result = CliRunner().invoke(main, ["accept", "--feed", spec.feed, "--date", str(DAY), "--reason", reason])
    assert result.exit_code == 0, result.output
    committed = raw_zone.committed_manifest_record(lake, spec.feed, DAY)
    assert committed.rows_read == blocked.rows_read
    assert any(reason in f and "volume" in f for f in committed.quality.findings)
    acceptance = profiles.acceptance_for(lake, spec.feed, DAY)
    assert acceptance.reason == reason and "volume" in acceptance.findings[0]
    learnt = [p for p in profiles.day_profiles(lake, spec.feed) if p.load_date == DAY]
    assert learnt[0].accepted == reason and learnt[0].rows_read == blocked.rows_read
    shown = CliRunner().invoke(main, ["quality", "--feed", spec.feed])
    assert shown.exit_code == 0 and "accepted:" in shown.output
    audited = [e for e in audit.entries(Store(settings.share_url)) if e["event"] == "delivery_accepted"]
    assert audited and audited[-1]["detail"]["reason"] == reason
