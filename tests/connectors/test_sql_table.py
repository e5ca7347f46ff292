"""SQL table transport: a registry updated in place, pulled incrementally on its updated_at cursor."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.storage import Store
from pingan.ingest.load import RerunRefused, ingest_feed

COLUMNS = "nsrsbh, nsrmc, fddbr_xm, fddbr_sfzh, hy_dm, scjydz, jd_mc, djzt, nsxydj, updated_at"


def registry(path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute(f"create table tax_registration ({COLUMNS})")
    return con


def row(uscc: str, status: str, rating: str, updated: str) -> tuple:
    return (
        uscc,
        "上海某某贸易有限公司",
        "张三",
        "310118199001011234",
        "F5191",
        "青浦区某路1号",
        "金泽镇",
        status,
        rating,
        updated,
    )


def test_changes_are_pulled_once_and_history_accumulates(settings, tmp_path, monkeypatch):
    db = tmp_path / "tax.sqlite"
    monkeypatch.setenv("PINGAN_QINGPU_TAX_DB_URL", f"sqlite:///{db}")
    con = registry(db)
    con.executemany(
        f"insert into tax_registration ({COLUMNS}) values (?,?,?,?,?,?,?,?,?,?)",
        [
            row("91310118MA1JL0000A", "正常", "A", "2024-12-30 10:00:00"),  # existed before the first run
            row("91310118MA1JL0001B", "正常", "B", "2025-03-01 09:00:00"),
            row("91310118MA1JL0002C", "正常", "B", "2025-03-02 08:00:00"),  # tomorrow: not in day 1's window
        ],
    )
    con.commit()
    spec = load_specs(settings.connectors_dir)["qingpu_tax_registry"]
    lake = Store(settings.lake_url)
    lake.ensure()

    day1 = ingest_feed(spec, date(2025, 3, 1), settings, lake)
    assert day1.rows_written == 2
    assert day1.manifest.cursor_before is None
    assert day1.manifest.cursor_after == "2025-03-01 09:00:00"

    # the source overwrites a row in place: the lake keeps both states
    con.execute(
        "update tax_registration set djzt='非正常户', nsxydj='D', updated_at='2025-03-02 15:30:00' "
        "where nsrsbh='91310118MA1JL0001B'"
    )
    con.commit()
    day2 = ingest_feed(spec, date(2025, 3, 2), settings, lake)
    assert day2.manifest.cursor_before == "2025-03-01 09:00:00"
    rows = lake.read_parquet(day2.manifest.files.raw).to_pylist()
    assert sorted((r["uscc"], r["registration_status"]) for r in rows) == [
        ("91310118MA1JL0001B", "非正常户"),
        ("91310118MA1JL0002C", "正常"),
    ]

    # the source no longer holds B's day-1 state: a plain rerun of day 1 is refused, saying why
    with pytest.raises(RerunRefused, match="later day 2025-03-02 is committed; the source has moved on"):
        ingest_feed(spec, date(2025, 3, 1), settings, lake)
    assert raw_zone.committed_manifest_record(lake, spec.feed, date(2025, 3, 1)).batch_id == day1.batch_id

    # forced, it uses day 1's window again: no row of day 2 leaks into it
    rerun = ingest_feed(spec, date(2025, 3, 1), settings, lake, force=True)
    assert rerun.manifest.cursor_before is None and rerun.rows_written == 1  # B moved on to day 2
    history = [
        r["record_id"]
        for d in (date(2025, 3, 1), date(2025, 3, 2))
        for r in lake.read_parquet(
            raw_zone.committed_manifest_record(lake, spec.feed, d).files.raw
        ).to_pylist()
    ]
    assert len(history) == len(set(history))
    assert "310118:91310118MA1JL0001B:2025-03-02 15:30:00" in history
    assert day1.manifest.sources[0]["name"].endswith("tax.sqlite#tax_registration")


def test_a_late_retry_of_a_skipped_day_is_refused_rather_than_loaded_twice(settings, tmp_path, monkeypatch):
    db = tmp_path / "tax.sqlite"
    monkeypatch.setenv("PINGAN_QINGPU_TAX_DB_URL", f"sqlite:///{db}")
    con = registry(db)
    con.executemany(
        f"insert into tax_registration ({COLUMNS}) values (?,?,?,?,?,?,?,?,?,?)",
        [
            row("91310118MA1JL0001B", "正常", "B", "2025-03-01 09:00:00"),
            row("91310118MA1JL0002C", "正常", "B", "2025-03-02 08:00:00"),
            row("91310118MA1JL0003D", "正常", "B", "2025-03-03 08:00:00"),
        ],
    )
    con.commit()
    spec = load_specs(settings.connectors_dir)["qingpu_tax_registry"]
    lake = Store(settings.lake_url)
    lake.ensure()
    ingest_feed(spec, date(2025, 3, 1), settings, lake)
    day3 = ingest_feed(spec, date(2025, 3, 3), settings, lake)  # day 2 failed that night; day 3 ran anyway
    assert day3.rows_written == 2  # the cursor carried it through day 2's changes
    with pytest.raises(RerunRefused, match="load them twice"):
        ingest_feed(spec, date(2025, 3, 2), settings, lake)
    assert raw_zone.committed_manifest_record(lake, spec.feed, date(2025, 3, 2)) is None
