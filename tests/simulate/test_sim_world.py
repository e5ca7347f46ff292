"""The simulated world holds together: the enterprises the fire brigade names are in the tax registry.

A nightly connector reads the registry up to day D; every USCC an inspection or alarm of day D names must
be in what it read, unless the defect ledger says why not: the fire record's own USCC is broken or missing,
or every registry row of that enterprise so far carries a defect (and is quarantined).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from sim_native import ledger, read_feed
from stdnum.cn import uscc as uscc_check

FIRE_FEEDS = ("qingpu_fire_inspections", "qingpu_fire_alarms")
REGISTRY = "qingpu_tax_registry"


def registry_rows(home) -> list[tuple[str, str]]:
    """(USCC, updated_at) of every registry row, as the source table holds them."""
    con = sqlite3.connect(home / "sim/qingpu/tax_registry.sqlite")
    try:
        return con.execute("SELECT nsrsbh, updated_at FROM tax_registration").fetchall()
    finally:
        con.close()


def _enterprise(entry: dict) -> str:
    """The enterprise a registry ledger entry concerns: a broken check character still names its body."""
    record_id = entry["record_id"] or ""
    return record_id[:-1] if entry["kind"] == "bad_uscc_checksum" else record_id


def test_fire_data_names_only_registered_enterprises_unless_ledgered(sim):
    entries = ledger(sim.home)
    broken_rows = {
        (e["record_id"], e["date"])
        for e in entries
        if e["feed"] == REGISTRY and e["kind"] != "duplicate_delivery"
    }
    fire_defects = {(e["feed"], e["record_id"]) for e in entries if e["feed"] in FIRE_FEEDS}
    rows = registry_rows(sim.home)
    checked, explained = 0, 0
    for day in sim.days:
        until = (day + timedelta(days=1)).isoformat()
        # what a nightly pull up to `day` read and committed: rows stamped before its end, not broken
        registered = {u for u, at in rows if at < until and (u, at[:10]) not in broken_rows}
        ledgered = {
            _enterprise(e) for e in entries if e["feed"] == REGISTRY and date.fromisoformat(e["date"]) <= day
        }
        for feed in FIRE_FEEDS:
            for record in read_feed(sim.home, feed, day):
                code = record.fields.get("unitUscc")
                if (feed, record.record_id) in fire_defects or not record.complete:
                    continue  # the fire record itself is ledgered (a broken or missing USCC among them)
                assert code and uscc_check.is_valid(code), (feed, day, record.record_id, code)
                checked += 1
                if code in registered:
                    continue
                assert code in ledgered or code[:-1] in ledgered, (
                    f"{feed} {day} {record.record_id}: {code} is not in the registry as of {day} "
                    "and no ledger entry explains it"
                )
                explained += 1
    assert checked > 1000
    assert explained < 0.05 * checked  # the ledger explains the exceptions; it does not hide a broken world


def test_an_enterprise_changed_later_in_the_range_is_registered_from_the_first_night(sim):
    """The range is written before any night reads it: a change on the last day must not hide the
    enterprise from the first night's pull (its earlier state is there, stamped before)."""
    rows = registry_rows(sim.home)
    first_night = {u for u, at in rows if at < (sim.start + timedelta(days=1)).isoformat()}
    changed_later = {u for u, at in rows if at >= sim.end.isoformat()}
    assert changed_later
    assert len(changed_later - first_night) <= sum(
        1 for e in ledger(sim.home) if e["feed"] == REGISTRY and e["kind"] == "bad_uscc_checksum"
    )
