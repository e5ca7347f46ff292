"""changes.diff compares a night with the state of the last publication per source day: only the days
whose aggregates differ are compared row by row, and every change, a row moving day, a withdrawal and a
key that repeats across days is still found."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from pingan.core.storage import open_store
from pingan.sharing import changes

D1, D2, D3 = 20148, 20149, 20150  # source days: days since 1970-01-01
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
         pa.array([r[2] for r in rows], pa.int32())],
        schema=changes.STATE_SCHEMA,
    )  # fmt: skip
    return changes.State("s1", 1, "fp", table)


def diff(tonight: list[tuple], state: changes.State) -> changes.NightChanges | None:
    con = duckdb.connect()
    con.register("warehouse_rows", pa.table({"k": pa.array([r[0] for r in tonight], pa.string()),
                                             "v": pa.array([r[1] for r in tonight], pa.int64()),
                                             "reported_on": pa.array([r[2] for r in tonight], pa.int32()).cast(pa.date32())}))  # fmt: skip
    day = changes.day_sql("reported_on", "DATE")
    sql = f"SELECT k AS source_key, hash(v) AS source_hash, {day} AS source_day, 'b-' || v AS batch_id FROM warehouse_rows WHERE v > ?"
    scanned = []

    def scan(days):
        scanned.append(days)
        if days is None:
            return sql, [0]
        within, params = changes.within_days("reported_on", "DATE", days)
        return f"{sql} AND {within}", [0, *params]

    night = changes.diff(con, scan, state)
    assert scanned[0] is None and all(d == (night.days if night else d) for d in scanned[1:])
    return night


def test_a_night_of_new_rows_compares_only_its_day():
    night = diff(ROWS + [("f", 6, D3)], state_of(ROWS))
    assert night.days == [D3]
    assert night.changed["source_key"].to_pylist() == ["f"] and night.inserted == 1
    assert night.deleted == [] and night.published.num_rows == 0
    assert night.batch_ids == ["b-1", "b-2", "b-3", "b-4", "b-5", "b-6"]  # of every row, from the same scan


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


def test_a_row_without_a_key_asks_for_the_whole_history():
    # beside a withdrawn key ('a'), and alone: neither raises, neither is a deletion of a null key
    assert diff(ROWS[1:] + [(None, 6, D3)], state_of(ROWS)) is None
    assert diff(ROWS + [(None, 6, D3)], state_of(ROWS)) is None


@pytest.mark.parametrize("kind", ["DATE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP"])
def test_within_days_keeps_exactly_the_rows_of_those_days(kind):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    cast = "DATE" if kind == "DATE" else kind
    con.execute(f"""CREATE TABLE t AS SELECT CAST(TIMESTAMPTZ '2025-02-27 00:00:00+00' + to_minutes(i * 97) AS {cast}) AS ts
                    FROM range(200) r(i)""")  # fmt: skip
    days = [D1 - 1, D1, D3]  # 28 Feb, 1 and 3 March (UTC)
    within, params = changes.within_days('"ts"', kind, days)
    kept = con.execute(f"SELECT count(*) FROM t WHERE {within}", params).fetchone()[0]
    day = changes.day_sql('"ts"', kind)
    expected = con.execute(f"SELECT count(*) FROM t WHERE {day} IN ({D1 - 1}, {D1}, {D3})").fetchone()[0]
    assert kept == expected > 0
    if kind != "TIMESTAMP WITH TIME ZONE":  # a naive value's day is its own date
        dates = con.execute(
            "SELECT count(*) FROM t WHERE CAST(ts AS DATE) IN ('2025-02-28', '2025-03-01', '2025-03-03')"
        ).fetchone()[0]
        assert kept == dates


def test_a_state_written_before_source_days_is_not_trusted(tmp_path):
    """A state file of the earlier format (no source_day) reads as no state: the next night prepares the
    whole history and writes the new format."""
    shares = open_store(f"file://{tmp_path}", create=True)
    state = state_of(ROWS)
    changes.write_state(shares, "wujiang", "border_incidents", state)
    assert changes.read_state(shares, "wujiang", "border_incidents").rows.equals(state.rows)
    older = changes.State("s1", 1, "fp", state.rows.drop_columns(["source_day"]))
    changes.write_state(shares, "wujiang", "border_incidents", older)
    assert changes.read_state(shares, "wujiang", "border_incidents") is None


def test_a_state_written_lz4_compressed_still_reads(tmp_path):
    """States were lz4-compressed Arrow IPC before they were written uncompressed (a zero-copy read): the
    first night after the change reads the old file and trusts it."""
    import io
    import json

    shares = open_store(f"file://{tmp_path}", create=True)
    state = state_of(ROWS)
    meta = {"snapshot_id": state.snapshot_id, "delta_version": state.delta_version, "fingerprint": "fp"}
    table = state.rows.replace_schema_metadata({"pingan": json.dumps(meta)})
    buf = io.BytesIO()
    with pa.ipc.new_file(buf, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    shares.put_bytes(changes.state_key("wujiang", "border_incidents"), buf.getvalue())
    read = changes.read_state(shares, "wujiang", "border_incidents")
    assert read.rows.equals(state.rows) and (read.snapshot_id, read.delta_version) == ("s1", 1)
    changes.write_state(shares, "wujiang", "border_incidents", read)
    data = shares.get_bytes(changes.state_key("wujiang", "border_incidents"))
    assert pa.ipc.open_file(pa.BufferReader(data)).read_all().equals(table)  # rewritten, still the same rows
