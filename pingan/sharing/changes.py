"""Which granted rows changed since a dataset's last publication: the night's publish treats only those.

The hub keeps, per partner and dataset, the state of its last publication (`_hub/publish_state/…`, outside
every partner's prefix): for each published row its source key (the warehouse's record or event id, the
column the grant keys per partnership), the source row's hash and a hash of the row as published. The source
hash is the build's `row_hash` column where the table has one (a hash of the whole row, computed by dbt for
the rows a build writes: the facts partners receive), else a hash of the granted columns. A night then asks
the warehouse for the key and source hash of every row the grant selects (one vectorised scan: of a few
narrow columns with row_hash, of the granted columns without; no treatment) and compares them with the
state, in two steps so that the comparison is bounded by the night's changes, not by the history:

1. per day of the grant's as-of column (`source_day`, days since 1970-01-01 UTC), the count of rows and
   the sum of a hash of each row's key and source hash, from that scan and from the state: a day whose
   two aggregates agree holds the same (key, hash) pairs (a 64-bit hash per row, as the row comparison
   itself uses); the same scan lists the rows' batches (the manifest's sources);
2. only the days that differ are read again (a range of the as-of column: the warehouse's zone maps skip
   the rest; the caller's scan may read their whole rows once, grant_reads.DaysRead) and compared row by row
   (a hash join of their keys):

- a key whose hash differs or that is new: its row is treated, redacted and guarded, and merged;
- a key of the state no longer selected (its batch withdrawn, a re-delivery moved it out of the grant's
  filter or past the as-of date): its published row is deleted.

Every cause of a change is caught this way, not only new batches: a rerun that replaced a batch, a
re-delivery, a code mapping or a reference table that changed a fact row without a new batch, a grid event
turning overdue (a row that moves to another day changes both days). What stays proportional to history
is that one scan (of row_hash, or a hash of the granted columns; a group-by, no join) and the state file (five columns
of fixed-size values per row, one of them the source day), not the row comparison, the treatment, the PII guard or the merge.

The state is trusted only if it names the snapshot and Delta version the signed `latest` manifest names;
otherwise (a crash between the pointer and the state, a first publication, `--full`) the whole granted
history is prepared and the state rewritten from it. The content digest (row count and the sum of the
published rows' hashes) identifies the content the same way after a full or an incremental publication,
so a rerun of the same night finds its snapshot already published.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.storage import Store

SOURCE_KEY = "__pingan_source_key"  # extra columns of a read: the row's source key and source hash
SOURCE_HASH = "__pingan_source_hash"
SOURCE_DAY = "__pingan_source_day"
# out_time: the published value of the grant's as-of column (null if not shared); it bounds which of the
# table's files a merge must scan for the rows it updates or deletes. source_day: the day (days since
# 1970-01-01, UTC) of the source row's as-of value (null without one): the unit a night compares rows in
STATE_SCHEMA = pa.schema(
    [("source_key", pa.string()), ("source_hash", pa.uint64()), ("out_hash", pa.uint64()),
     ("out_time", pa.timestamp("us", "UTC")), ("source_day", pa.int32())]
)  # fmt: skip


@dataclass(frozen=True)
class State:
    """One dataset's last publication as the hub recorded it."""

    snapshot_id: str
    delta_version: int
    fingerprint: str
    rows: pa.Table  # STATE_SCHEMA: one row per published row
    # what a row's source hash is of: the build's row_hash column ("row_hash") or, where the source table
    # has none, the granted columns ("columns"): a state of the other kind is not compared against
    source_hash_of: str = "columns"

    @property
    def digest(self) -> str:
        return content_digest(self.rows)


@dataclass(frozen=True)
class NightChanges:
    """What a night changes in one dataset, against the state (source keys)."""

    changed: pa.Table  # source_key, source_hash of the rows to read and upsert
    deleted: list[str]  # source keys whose published row goes
    inserted: int  # of the changed keys, those the state did not hold
    published: pa.Table  # source_key, is_gone, out_hash, out_time: the state's rows of the changed keys
    days: list[int | None] | None = None  # the source days compared row by row (None: rows without a day)
    batch_ids: list[str] | None = None  # the batches of every row the grant selects tonight (sorted)


_MEMORY: list[duckdb.DuckDBPyConnection] = []


def memory() -> duckdb.DuckDBPyConnection:
    """A cursor on one in-memory database for the run's small joins (a new database costs ~50 ms)."""
    if not _MEMORY:
        _MEMORY.append(duckdb.connect())
    return _MEMORY[0].cursor()


def state_key(partner: str, dataset: str) -> str:
    return f"_hub/publish_state/{partner}/{dataset}.arrow"


def read_state(shares: Store, partner: str, dataset: str) -> State | None:
    data = shares.get_bytes(state_key(partner, dataset))
    if data is None:
        return None
    try:
        table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        meta = json.loads(table.schema.metadata[b"pingan"])
        rows = table.select(STATE_SCHEMA.names).cast(STATE_SCHEMA).replace_schema_metadata(None)
        return State(meta["snapshot_id"], int(meta["delta_version"]), meta["fingerprint"], rows,
                     meta.get("source_hash_of", "columns"))  # fmt: skip
    except (KeyError, ValueError, TypeError, pa.ArrowException):
        return None  # an unreadable state: the next publication prepares the whole history


def write_state(shares: Store, partner: str, dataset: str, state: State) -> None:
    meta = {"snapshot_id": state.snapshot_id, "delta_version": state.delta_version,
            "fingerprint": state.fingerprint, "source_hash_of": state.source_hash_of}  # fmt: skip
    table = state.rows.replace_schema_metadata({"pingan": json.dumps(meta)})
    # Arrow IPC, uncompressed: rewritten and read every night, it must cost next to nothing (lz4 took ~14 ms
    # to write and ~5 ms to read 58,000 rows; uncompressed ~3 ms and a zero-copy read, at twice the bytes)
    buf = io.BytesIO()
    with pa.ipc.new_file(buf, table.schema) as writer:
        writer.write_table(table)
    # not fsynced (the cost grows with the history): a state lost in a power cut is unreadable or names an
    # older snapshot than `latest`, and the next night then prepares the whole history (read_state, publish.py)
    shares.put_bytes(
        state_key(partner, dataset), buf.getvalue(), "application/vnd.apache.arrow.file", durable=False
    )


def keys_unique(rows: pa.Table) -> bool:
    """Whether every row of a state has a source key of its own (else no state is kept)."""
    con = memory()
    con.register("s", rows)
    return con.sql(
        "SELECT count(source_key) = count(*) AND count(DISTINCT source_key) = count(*) FROM s"
    ).fetchone()[0]


def row_hashes(table: pa.Table) -> pa.Array:
    """A 64-bit hash of each row of `table` (all its columns, nulls included), in row order."""
    con = memory()
    con.register("t", table)
    columns = ", ".join(quote(c) for c in table.column_names)
    return con.sql(f"SELECT hash({columns}) AS h FROM t").to_arrow_table()["h"].combine_chunks()


def published_times(table: pa.Table, column: str | None) -> pa.Array:
    """The column's values as UTC instants (a date as its midnight UTC); nulls if it is not a date or time."""
    kind = table.schema.field(column).type if column in table.column_names else None
    if kind is None or not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        return pa.nulls(table.num_rows, pa.timestamp("us", "UTC"))
    values = table[column].combine_chunks()
    if pa.types.is_date(kind):
        values = values.cast(pa.date32()).cast(pa.timestamp("us"))
    return values.cast(pa.timestamp("us", kind.tz if pa.types.is_timestamp(kind) else None)).cast(
        pa.timestamp("us", "UTC")
    )


def content_digest(rows: pa.Table) -> str:
    """Row count and the sum (mod 2^64) of the published rows' hashes: the same for the same rows in any
    order, whether a full or an incremental publication wrote them."""
    con = memory()
    con.register("s", rows)
    count, total = con.sql(
        "SELECT count(*), coalesce(sum(out_hash::HUGEINT) % 18446744073709551616, 0) FROM s"
    ).fetchone()
    return f"{count}:{int(total):016x}"


# SQL and parameters of the rows the grant selects tonight, of these source days only (None: every day):
# columns source_key, source_hash, source_day, batch_id (the row's raw-zone batch, or null)
Scan = Callable[[list[int | None] | None], tuple[str, list]]


def diff(con: duckdb.DuckDBPyConnection, scan: Scan, state: State) -> NightChanges | None:
    """Compare tonight's rows with the state: one scan aggregated per source day, then a hash join of the
    rows of the days whose aggregates differ, in the warehouse's connection. None if a source key repeats
    or is null (it cannot address one row: the whole history is prepared instead). The state's keys are unique
    (publish.py records no state otherwise), so tonight's are iff (a) in the days compared, tonight's row
    count is the state's, less the keys gone, plus the new ones, and (b) no new key is a key of the state
    (it would repeat one of a day that did not change): counts, not a hashing of every key."""
    con.register("_published_state", state.rows)
    try:
        days, tonight, batch_ids = _days_that_differ(con, *scan(None))
        found = _row_diff(con, *scan(days), days) if days else _NO_ROWS
    finally:
        con.unregister("_published_state")
    if found["source_key"].null_count:  # a row of tonight's without a key cannot be addressed either
        return None
    gone = pc.fill_null(found["is_gone"], False)
    changed = found.filter(pc.invert(gone)).select(["source_key", "source_hash"])
    changed = changed.cast(pa.schema([("source_key", pa.string()), ("source_hash", pa.uint64())]))
    deleted = sorted(found.filter(gone)["source_key"].to_pylist())
    new_keys = found.filter(pc.and_(pc.invert(gone), pc.fill_null(found["is_new"], False)))["source_key"]
    new_keys = new_keys.combine_chunks()
    compared = pc.sum(pc.cast(_in_days(state.rows["source_day"], days), pa.int64())).as_py() or 0
    if tonight != compared - len(deleted) + len(pc.unique(new_keys)):  # a new key twice: no
        return None
    if len(new_keys) and pc.any(pc.is_in(state.rows["source_key"], value_set=new_keys)).as_py():
        return None
    published = found.filter(pc.is_valid(found["out_hash"])).select(
        ["source_key", "is_gone", "out_hash", "out_time"]
    )
    return NightChanges(changed, deleted, len(new_keys), published, days, batch_ids)


_DAY_AGGREGATES = """SELECT source_day, count(*) AS n, sum(hash(source_key, source_hash)::HUGEINT) AS h{extra}
    FROM {rows} GROUP BY source_day"""
_NO_ROWS = pa.table(
    {"source_key": pa.array([], pa.string()), "source_hash": pa.array([], pa.uint64()),
     "is_new": pa.array([], pa.bool_()), "is_gone": pa.array([], pa.bool_()),
     "out_hash": pa.array([], pa.uint64()), "out_time": pa.array([], pa.timestamp("us", "UTC"))}
)  # fmt: skip


def _days_that_differ(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> tuple[list, int, list[str]]:
    """The source days whose (row count, sum of the rows' key-and-hash) differ between tonight and the
    state, tonight's row count in those days, and the batches of tonight's rows (the same scan: the
    manifest's sources need them, a second scan of the history would cost as much again)."""
    batches = ", list(DISTINCT batch_id) FILTER (WHERE batch_id IS NOT NULL) AS batches"
    query = f"""WITH cur AS ({_DAY_AGGREGATES.format(rows=f"({sql})", extra=batches)}),
        st AS ({_DAY_AGGREGATES.format(rows="_published_state", extra="")})
        SELECT coalesce(c.source_day, s.source_day) AS source_day, coalesce(c.n, 0) AS n,
               c.n IS DISTINCT FROM s.n OR c.h IS DISTINCT FROM s.h AS differs, c.batches
        FROM cur c FULL JOIN st s ON c.source_day IS NOT DISTINCT FROM s.source_day"""
    rows = con.execute(query, params).fetchall()
    differ = [r for r in rows if r[2]]
    batch_ids = sorted({b for r in rows for b in r[3] or []})
    return sorted((r[0] for r in differ), key=lambda d: (d is None, d)), sum(r[1] for r in differ), batch_ids


def _row_diff(con: duckdb.DuckDBPyConnection, sql: str, params: list, days: list) -> pa.Table:
    """Tonight's rows of these days (sql) and the state's, joined on the key: those that differ."""
    dated = [d for d in days if d is not None]
    within = " OR ".join(([f"source_day IN ({', '.join('?' * len(dated))})"] if dated else [])
                         + (["source_day IS NULL"] if None in days else []))  # fmt: skip
    query = f"""WITH st AS (SELECT * FROM _published_state WHERE {within})
        SELECT coalesce(c.source_key, s.source_key) AS source_key, c.source_hash,
               s.source_key IS NULL AS is_new, c.source_key IS NULL AS is_gone, s.out_hash, s.out_time
        FROM ({sql}) c FULL JOIN st s ON c.source_key = s.source_key
        WHERE c.source_hash IS DISTINCT FROM s.source_hash"""
    return con.execute(query, [*dated, *params]).to_arrow_table()


def _in_days(values: pa.ChunkedArray, days: list) -> pa.ChunkedArray:
    dated = pa.array([d for d in days if d is not None], pa.int32())
    inside = pc.fill_null(pc.is_in(values, value_set=dated), False)
    return pc.or_(inside, pc.is_null(values)) if None in days else inside


DAY_US = 86_400_000_000
_EPOCH = date(1970, 1, 1)


def day_sql(column: str | None, kind: str) -> str:
    """SQL of a row's source day from its as-of column (quoted) of this DuckDB type: days since 1970-01-01
    (UTC for a timestamp; no time-zone conversion, it is computed for every row); NULL without one."""
    if column and kind == "DATE":
        return f"CAST({column} - DATE '1970-01-01' AS INTEGER)"
    if column and kind.startswith("TIMESTAMP"):
        return f"CAST(epoch_us({column}) // {DAY_US} AS INTEGER)"
    return "CAST(NULL AS INTEGER)"


def within_days(column: str | None, kind: str, days: list[int | None]) -> tuple[str, list]:
    """SQL (and parameters) keeping the rows of these source days: the day itself, and ranges of the as-of
    column a day wider on each side (a zone map can skip a row group on a range, not on the day's
    expression)."""
    dated = sorted(d for d in days if d is not None)
    day = day_sql(column, kind)
    exact = ([f"{day} IN ({', '.join('?' * len(dated))})"] if dated else []) + (
        [f"{day} IS NULL"] if None in days else []
    )
    if not exact:
        return "false", []
    sql, params = "(" + " OR ".join(exact) + ")", list(dated)
    if dated and column and kind != "" and None not in days:
        ranges = []
        for first, last in _runs(dated):
            ranges.append(f"({column} >= ? AND {column} < ?)")
            params += [_day_start(first - 1, kind), _day_start(last + 2, kind)]
        sql += " AND (" + " OR ".join(ranges) + ")"
    return sql, params


def _runs(days: list[int]) -> list[tuple[int, int]]:
    """Consecutive days as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for d in days:
        if runs and d <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def _day_start(day: int, kind: str) -> date | datetime:
    start = _EPOCH + timedelta(days=day)
    if kind == "DATE":
        return start
    midnight = datetime.combine(start, time())
    return midnight.replace(tzinfo=UTC) if "TIME ZONE" in kind else midnight


def next_state(state: State, changed_rows: pa.Table, deleted: list[str]) -> pa.Table:
    """The state's rows after a night: changed rows replaced or added, deleted ones gone."""
    replaced = pa.concat_arrays([changed_rows["source_key"].combine_chunks().cast(pa.string()),
                                 pa.array(deleted, pa.string())])  # fmt: skip
    kept = state.rows.filter(pc.invert(pc.is_in(state.rows["source_key"], value_set=replaced)))
    return pa.concat_tables([kept, changed_rows.cast(STATE_SCHEMA)])


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
