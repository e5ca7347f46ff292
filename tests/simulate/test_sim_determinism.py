"""Same seed and arguments: the same bytes. Another seed: other data. A day alone: the same day."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date
from pathlib import Path

from sim_runs import END, START, run_simulation

REGISTRY = "sim/qingpu/tax_registry.sqlite"


def digests(home: Path) -> dict[str, str]:
    """sha256 of every file written, except the SQLite database (compared by content below)."""
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and p.as_posix().endswith(".sqlite") is False
    }


def table_dump(home: Path) -> list[tuple]:
    """SQLite pages are not guaranteed byte-identical across runs; the table content is what must be."""
    con = sqlite3.connect(home / REGISTRY)
    try:
        return con.execute("SELECT * FROM tax_registration ORDER BY rowid").fetchall()
    finally:
        con.close()


def test_same_seed_gives_byte_identical_files_and_the_same_sqlite_table_content(sim, tmp_path):
    again = run_simulation(tmp_path / "again")
    first, second = digests(sim.home), digests(again.home)
    assert any(name.endswith(".xlsx") for name in first)  # zip timestamps and docProps are pinned
    assert first == second
    assert table_dump(sim.home) == table_dump(again.home)
    assert again.counts == sim.counts


def test_another_seed_gives_other_data(sim, tmp_path):
    other = run_simulation(tmp_path / "other", seed=8)
    first, second = digests(sim.home), digests(other.home)
    assert first.keys() == second.keys()
    changed = [name for name in first if first[name] != second[name]]
    assert len(changed) >= len(first) - 2  # every data file differs (joint ops may be empty either way)
    assert table_dump(sim.home) != table_dump(other.home)


def test_a_day_simulated_alone_equals_that_day_in_a_range(sim, tmp_path):
    """Streams are keyed by (seed, feed, day): nightly runs and backfills agree file by file."""
    day = date(2024, 3, 7)
    assert START < day < END
    alone = run_simulation(tmp_path / "alone", start=day, end=day)
    ymd = day.strftime("%Y%m%d")
    truncated = {e["file"] for e in _ledger(sim.home) + _ledger(alone.home) if e["kind"] == "truncated_file"}
    files = [
        f"sim/qingpu/110/110接处警_{ymd}.csv",
        f"sim/jiashan/incidents/jiashan_jq_{ymd}.csv",
        f"sim/qingpu/grid/grid_events_{ymd}.jsonl",
        f"sim/jiashan/grid/网格事件_{ymd}.xlsx",
        f"sim/qingpu/fire/inspections_{ymd}.jsonl",
        f"sim/qingpu/fire/alarms_{ymd}.jsonl",
        f"sim/pinghu_jinshan/joint_operations/joint_operations_{ymd}.csv",
        f"landing/wujiang/incidents/dt={day}/incidents_{ymd}.jsonl",
    ]
    compared = 0
    for rel in files:
        if rel in truncated or rel.removeprefix("landing/") in truncated:
            continue
        assert (sim.home / rel).read_bytes() == (alone.home / rel).read_bytes(), rel
        compared += 1
    assert compared >= len(files) - 2  # each run cuts one file short


def _ledger(home: Path) -> list[dict]:
    from sim_native import ledger

    return ledger(home)


def test_a_later_run_keeps_earlier_days_and_their_ledger_entries(tmp_path):
    """Simulating day by day (as a nightly job would) leaves a ledger that still matches every file."""
    from collections import Counter

    from sim_native import ledger, mapped_codes, observed, qingpu_stage_times

    from pingan_sim import FEEDS

    home = tmp_path / "home"
    run_simulation(home, start=date(2024, 3, 6), end=date(2024, 3, 7))
    both = run_simulation(home, start=date(2024, 3, 7), end=date(2024, 3, 8))
    both.start = date(2024, 3, 6)  # read all three days back
    entries = ledger(home)
    assert {e["date"] for e in entries} >= {"2024-03-06", "2024-03-08"}
    codes, times = mapped_codes(), qingpu_stage_times(both)
    for feed in FEEDS:
        if feed == "qingpu_tax_registry":
            continue  # one table, rewritten by each run with that run's changes
        ledgered = Counter(
            (e["date"], e["record_id"], e["kind"], e["column"]) for e in entries if e["feed"] == feed
        )
        assert observed(both, feed, codes, times) == ledgered, feed


def registry_as_of(home: Path, day: date) -> dict[str, tuple]:
    """The registry a nightly pull up to `day` has seen: the latest row per USCC stamped before its end."""
    con = sqlite3.connect(home / REGISTRY)
    try:
        rows = con.execute(
            "SELECT * FROM tax_registration WHERE updated_at < ? ORDER BY updated_at",
            (date.fromordinal(day.toordinal() + 1).isoformat(),),
        ).fetchall()
    finally:
        con.close()
    return {row[0]: row for row in rows}  # later rows win


def test_the_registry_as_of_a_day_is_the_same_however_the_run_started(tmp_path):
    whole = run_simulation(tmp_path / "whole", start=date(2024, 3, 6), end=date(2024, 3, 8), defect_rate=0)
    for day in whole.days:
        alone = run_simulation(tmp_path / f"alone-{day}", start=day, end=day, defect_rate=0)
        assert registry_as_of(whole.home, day) == registry_as_of(alone.home, day), day
    # a day's pull reads that day's changes, each enterprise once
    day8 = [r for r in table_dump(whole.home) if r[-1].startswith("2024-03-08")]
    assert day8 and len({r[0] for r in day8}) == len(day8)
