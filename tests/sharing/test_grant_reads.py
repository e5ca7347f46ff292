"""A night's reads of a grant (grant_reads.DaysRead): whole rows only of the few days that differ."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from pingan.sharing import changes, grant_reads
from pingan.sharing.agreements import DatasetGrant


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("""CREATE TABLE main.fct_things AS SELECT 'k' || i AS record_id, i AS n,
                   DATE '2025-01-01' + (i % 30)::INTEGER AS reported_on FROM range(300) t(i)""")
    return con


def _grant(as_of: str | None) -> DatasetGrant:
    return DatasetGrant(source="fct_things", description="things", as_of_column=as_of,
                        columns={"record_id": "key_per_partnership", "n": "keep", "reported_on": "keep"})  # fmt: skip


def _read(grant: DatasetGrant, days: list) -> grant_reads.DaysRead:
    con = _warehouse()
    types = grant_reads.source_types(con, grant)
    read = grant_reads.DaysRead(con, grant, types, date(2025, 3, 1), "record_id")
    sql, params = read.scan(days)
    read.scanned = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
    return read


def test_a_few_days_that_differ_are_read_whole_once():
    day = (date(2025, 1, 2) - date(1970, 1, 1)).days
    read = _read(_grant("reported_on"), [day])
    assert read.rows is not None and read.rows.num_rows == 10 == read.scanned
    changed = pa.table({"source_key": ["k1", "k31"], "source_hash": pa.array([0, 0], pa.uint64())})
    rows, _ = read.rows_of(changed)
    assert sorted(rows[changes.SOURCE_KEY].to_pylist()) == ["k1", "k31"]


def test_a_grant_without_an_as_of_column_never_holds_its_whole_history():
    # every row's day is null: the "day" that differs is the whole table, so keys and hashes are compared
    # and only the changed rows read (memory bounded by the changes)
    read = _read(_grant(None), [None])
    assert read.rows is None and read.scanned == 300
    changed = pa.table({"source_key": ["k7"], "source_hash": pa.array([0], pa.uint64())})
    rows, _ = read.rows_of(changed)
    assert rows[changes.SOURCE_KEY].to_pylist() == ["k7"] and rows["n"].to_pylist() == [7]
