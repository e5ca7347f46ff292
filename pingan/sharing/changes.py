"""Which granted rows changed since a dataset's last publication: the night's publish treats only those.

The hub keeps, per partner and dataset, the state of its last publication (`_hub/publish_state/…`, outside
every partner's prefix): for each published row its source key (the warehouse's record or event id, the
column the grant keys per partnership), a hash of the source row's granted columns and a hash of the row as
published. A night then asks the warehouse for the key and hash of every row the grant selects (one
vectorised scan of the granted columns, no treatment) and compares them with the state:

- a key whose hash differs or that is new: its row is read, treated, redacted and guarded, and merged;
- a key of the state no longer selected (its batch withdrawn, a re-delivery moved it out of the grant's
  filter or past the as-of date): its published row is deleted.

Every cause of a change is caught this way, not only new batches: a rerun that replaced a batch, a
re-delivery, a code mapping or a reference table that changed a fact row without a new batch, a grid event
turning overdue. What stays proportional to history is that scan and the state file (three columns of
fixed-size values per row), not the treatment, the PII guard or the merge.

The state is trusted only if it names the snapshot and Delta version the signed `latest` manifest names;
otherwise (a crash between the pointer and the state, a first publication, `--full`) the whole granted
history is prepared and the state rewritten from it. The content digest (row count and the sum of the
published rows' hashes) identifies the content the same way after a full or an incremental publication,
so a rerun of the same night finds its snapshot already published.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pingan.core.storage import Store

SOURCE_KEY = "__pingan_source_key"  # extra columns of a read: the row's source key and source hash
SOURCE_HASH = "__pingan_source_hash"
# out_time: the published value of the grant's as-of column (null if not shared); it bounds which of the
# table's files a merge must scan for the rows it updates or deletes
STATE_SCHEMA = pa.schema(
    [("source_key", pa.string()), ("source_hash", pa.uint64()), ("out_hash", pa.uint64()),
     ("out_time", pa.timestamp("us", "UTC"))]
)  # fmt: skip


@dataclass(frozen=True)
class State:
    """One dataset's last publication as the hub recorded it."""

    snapshot_id: str
    delta_version: int
    fingerprint: str
    rows: pa.Table  # STATE_SCHEMA: one row per published row

    @property
    def digest(self) -> str:
        return content_digest(self.rows)


@dataclass(frozen=True)
class NightChanges:
    """What a night changes in one dataset, against the state (source keys)."""

    changed: pa.Table  # source_key, source_hash of the rows to read and upsert
    deleted: list[str]  # source keys whose published row goes
    inserted: int  # of the changed keys, those the state did not hold


_MEMORY: list[duckdb.DuckDBPyConnection] = []


def memory() -> duckdb.DuckDBPyConnection:
    """A cursor on one in-memory database for the run's small joins (a new database costs ~50 ms)."""
    if not _MEMORY:
        _MEMORY.append(duckdb.connect())
    return _MEMORY[0].cursor()


def state_key(partner: str, dataset: str) -> str:
    return f"_hub/publish_state/{partner}/{dataset}.parquet"


def read_state(shares: Store, partner: str, dataset: str) -> State | None:
    data = shares.get_bytes(state_key(partner, dataset))
    if data is None:
        return None
    try:
        table = pq.read_table(pa.BufferReader(data))
        meta = json.loads(table.schema.metadata[b"pingan"])
        rows = table.select(STATE_SCHEMA.names).cast(STATE_SCHEMA).replace_schema_metadata(None)
        return State(meta["snapshot_id"], int(meta["delta_version"]), meta["fingerprint"], rows)
    except (KeyError, ValueError, TypeError, pa.ArrowException):
        return None  # an unreadable state: the next publication prepares the whole history


def write_state(shares: Store, partner: str, dataset: str, state: State) -> None:
    meta = {"snapshot_id": state.snapshot_id, "delta_version": state.delta_version,
            "fingerprint": state.fingerprint}  # fmt: skip
    table = state.rows.replace_schema_metadata({"pingan": json.dumps(meta)})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    shares.put_bytes(state_key(partner, dataset), buf.getvalue(), "application/vnd.apache.parquet")


def forget_state(shares: Store, partner: str, dataset: str) -> None:
    shares.delete(state_key(partner, dataset))


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


def diff(current: pa.Table, state: State) -> NightChanges:
    """current: source_key, source_hash of every row the grant selects tonight."""
    con = memory()
    con.register("cur", current)
    con.register("st", state.rows)
    changed = con.sql(
        "SELECT source_key, source_hash FROM cur EXCEPT SELECT source_key, source_hash FROM st"
    ).to_arrow_table()
    con.register("changed", changed)
    inserted = con.sql(
        "SELECT count(*) FROM changed WHERE source_key NOT IN (SELECT source_key FROM st)"
    ).fetchone()[0]
    deleted = con.sql(
        "SELECT source_key FROM st WHERE source_key NOT IN (SELECT source_key FROM cur) ORDER BY 1"
    ).fetchall()
    return NightChanges(changed, [r[0] for r in deleted], inserted)


def next_state(state: State, changed_rows: pa.Table, deleted: list[str]) -> pa.Table:
    """The state's rows after a night: changed rows replaced or added, deleted ones gone."""
    con = memory()
    con.register("st", state.rows)
    con.register("night", changed_rows)
    con.register("gone", pa.table({"source_key": pa.array(deleted, pa.string())}))
    return (
        con.sql("""SELECT * FROM st WHERE source_key NOT IN (SELECT source_key FROM night)
                   AND source_key NOT IN (SELECT source_key FROM gone)
                   UNION ALL SELECT * FROM night""")
        .to_arrow_table()
        .cast(STATE_SCHEMA)
    )


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
