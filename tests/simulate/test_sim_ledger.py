"""The defect ledger is exactly what is in the files: each ledgered defect is found where it says, and
every record the ledger does not name is clean (the quality gate's recall and false-positive tests rely
on both)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sim_native import (
    LAYOUTS,
    feed_file,
    ledger,
    mapped_codes,
    observed,
    qingpu_stage_times,
    read_feed,
    split_ids,
)
from sim_runs import END, START
from stdnum.cn import ric, uscc

from pingan_sim import FEEDS


def sim_rows(sim, feed: str) -> list[int]:
    import json

    return list(json.loads((sim.home / "sim" / "_summary.json").read_text("utf-8"))["rows"][feed].values())


@pytest.fixture(scope="module")
def codes():
    return mapped_codes()


@pytest.fixture(scope="module")
def grid_times(sim):
    return qingpu_stage_times(sim)


@pytest.mark.parametrize("feed", FEEDS)
def test_ledger_matches_the_files_exactly(sim, feed, codes, grid_times):
    entries = [e for e in ledger(sim.home) if e["feed"] == feed]
    ledgered = Counter((e["date"], e["record_id"], e["kind"], e["column"]) for e in entries)
    found = observed(sim, feed, codes, grid_times)
    # a duplicated record with its own defect would count that defect twice: none is injected that way
    assert found == ledgered
    assert entries or sum(sim_rows(sim, feed)) < 20, f"{feed}: no defect injected at all"


def test_every_kind_of_defect_is_injected_and_the_ledger_is_well_formed(sim):
    entries = ledger(sim.home)
    assert {e["kind"] for e in entries} == {
        "bad_id_checksum",
        "bad_uscc_checksum",
        "unknown_category_code",
        "stage_order",
        "missing_mandatory",
        "duplicate_delivery",
        "coord_outside_delta",
        "wrong_encoding",
        "truncated_file",
    }
    assert all(set(e) == {"feed", "date", "file", "record_id", "kind", "column"} for e in entries)
    assert all(START.isoformat() <= e["date"] <= END.isoformat() for e in entries)
    key = [
        (e["feed"], e["date"], e["file"], e["record_id"] or "", e["kind"], e["column"] or "") for e in entries
    ]
    assert key == sorted(key)
    # one defect per record: a ledgered record id appears once per feed and day
    named = Counter((e["feed"], e["date"], e["record_id"]) for e in entries if e["record_id"])
    assert max(named.values()) == 1


def test_exactly_one_truncated_file_cut_mid_row(sim):
    cut = [e for e in ledger(sim.home) if e["kind"] == "truncated_file"]
    assert len(cut) == 1
    e = cut[0]
    rel = feed_file(e["feed"], date.fromisoformat(e["date"]))
    data = (sim.home / rel).read_bytes()
    assert not data.endswith(b"\n")
    last = read_feed(sim.home, e["feed"], date.fromisoformat(e["date"]))[-1]
    assert not last.complete and last.record_id == e["record_id"]


def test_misencoded_lines_are_really_in_the_other_encoding(sim):
    for e in [e for e in ledger(sim.home) if e["kind"] == "wrong_encoding"]:
        records = read_feed(sim.home, e["feed"], date.fromisoformat(e["date"]))
        [r] = [r for r in records if r.record_id == e["record_id"]]
        if e["feed"] == "qingpu_110_incidents":  # a UTF-8 line in a GB18030 file
            text = r.raw.decode("utf-8")
            assert text.encode("gb18030") != r.raw and any("\u4e00" <= c <= "\u9fff" for c in text)
        else:  # a GB18030 line in a UTF-8 file
            with pytest.raises(UnicodeDecodeError):
                r.raw.decode("utf-8")
            r.raw.decode("gb18030")


def test_identifiers_validate_unless_ledgered_as_bad(sim):
    """Every resident ID and USCC in every feed passes python-stdnum, except the ledgered ones."""
    bad = {(e["feed"], e["record_id"]) for e in ledger(sim.home) if e["kind"].startswith("bad_")}
    checked = failed = 0
    for feed in FEEDS:
        lay = LAYOUTS[feed]
        days = [START] if feed == "qingpu_tax_registry" else sim.days
        for day in days:
            for r in read_feed(sim.home, feed, day):
                if not r.complete:
                    continue
                ids = split_ids(r.fields.get(lay.person_ids)) if lay.person_ids else []
                codes = [r.fields[lay.uscc]] if lay.uscc and r.fields.get(lay.uscc) else []
                invalid = [x for x in ids if not ric.is_valid(x)] + [c for c in codes if not uscc.is_valid(c)]
                checked += len(ids) + len(codes)
                failed += len(invalid)
                assert len(invalid) == (1 if (feed, r.record_id) in bad else 0), (feed, r.record_id, invalid)
    assert checked > 1000 and failed == len(bad)


def test_ledger_matches_the_files_at_a_high_defect_rate(tmp_path, codes):
    """A dirtier run (a third of the records broken) still matches the ledger one to one."""
    from sim_runs import run_simulation

    dirty = run_simulation(
        tmp_path / "dirty", start=date(2024, 3, 6), end=date(2024, 3, 7), defect_rate=0.3, seed=11
    )
    times = qingpu_stage_times(dirty)
    entries = ledger(dirty.home)
    for feed in FEEDS:
        ledgered = Counter(
            (e["date"], e["record_id"], e["kind"], e["column"]) for e in entries if e["feed"] == feed
        )
        assert observed(dirty, feed, codes, times) == ledgered, feed
    kinds_per_feed = Counter(e["feed"] for e in entries)
    assert set(kinds_per_feed) == set(FEEDS)
