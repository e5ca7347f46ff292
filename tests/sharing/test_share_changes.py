"""changes.diff compares a night with the state of the last publication per source day: only the days
whose aggregates differ are compared row by row, and every change, a row moving day, a withdrawal and a
key that repeats across days is still found."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from pingan.sharing import changes

D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
ROWS = [("a", 1, D1), ("b", 2, D1), ("c", 3, D2), ("d", 4, D2), ("e", 5, None)]


def state_of(rows: list[tuple]) -> changes.State:
    """The state a publication of these (key, value, day) rows records (source hash as the warehouse's)."""
    con = duckdb.connect()
    keys = pa.array([r[0] for r in rows], pa.string())
    values = pa.array([r[1] for r in rows], pa.int64())
    con.register("t", pa.table({"k": keys, "v": values}))
    hashes = con.sql("SELECT hash(v) AS h FROM t").to_arrow_table()["h"].combine_chunks()
    table = pa.table(
        [keys, hashes, hashes, pa.nulls(len(rows), pa.timestamp("us", "UTC")),
         pa.array([r[2] for r in rows], pa.date32())],
        schema=changes.STATE_SCHEMA,
    )  # fmt: skip
    return changes.State("s1", 1, "fp", table)


def diff(tonight: list[tuple], state: changes.State) -> changes.NightChanges | None:
    con = duckdb.connect()
    con.register("warehouse_rows", pa.table({"k": pa.array([r[0] for r in tonight], pa.string()),
                                             "v": pa.array([r[1] for r in tonight], pa.int64()),
                                             "d": pa.array([r[2] for r in tonight], pa.date32())}))  # fmt: skip
    sql = "SELECT k AS source_key, hash(v) AS source_hash, d AS source_day FROM warehouse_rows WHERE v > ?"
    return changes.diff(con, sql, [0], state)


def test_a_night_of_new_rows_compares_only_its_day():
    night = diff(ROWS + [("f", 6, D3)], state_of(ROWS))
    assert night.days == [D3]
    assert night.changed["source_key"].to_pylist() == ["f"] and night.inserted == 1
    assert night.deleted == [] and night.published.num_rows == 0


def test_an_unchanged_night_compares_nothing():
    night = diff(ROWS, state_of(ROWS))
    assert night.days == [] and night.changed.num_rows == 0 and night.deleted == []


def test_a_changed_row_a_withdrawn_row_and_a_row_without_a_day():
    tonight = [("a", 10, D1), ("c", 3, D2), ("d", 4, D2), ("e", 50, None)]  # a changed, b gone, e changed
    night = diff(tonight, state_of(ROWS))
    assert night.days == [D1, None]
    assert sorted(night.changed["source_key"].to_pylist()) == ["a", "e"] and night.inserted == 0
    assert night.deleted == ["b"]
    assert sorted(night.published["source_key"].to_pylist()) == ["a", "b", "e"]


def test_a_row_that_moves_to_another_day_is_an_update_of_both_days():
    tonight = [("a", 1, D1), ("b", 2, D3), ("c", 3, D2), ("d", 4, D2), ("e", 5, None)]
    night = diff(tonight, state_of(ROWS))
    assert night.days == [D1, D3]
    # the source hash (of the granted columns) is unchanged here: the row is not re-read, nothing deleted
    assert night.changed.num_rows == 0 and night.deleted == [] and night.inserted == 0
    moved = [("a", 1, D1), ("b", 20, D3), ("c", 3, D2), ("d", 4, D2), ("e", 5, None)]
    night = diff(moved, state_of(ROWS))
    assert night.changed["source_key"].to_pylist() == ["b"] and night.inserted == 0 and night.deleted == []


def test_a_key_that_repeats_across_days_asks_for_the_whole_history():
    assert diff(ROWS + [("c", 30, D3)], state_of(ROWS)) is None  # c's day D2 is unchanged
    assert diff(ROWS + [("f", 6, D3), ("f", 7, D3)], state_of(ROWS)) is None  # within the night's day
