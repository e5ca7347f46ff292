"""What a day's profile reads from a batch, without reading the whole batch back.

A profile needs every column's null count, the first rows of each column (distinct counts), and whole
columns only for a few: the event time, the record id and the low-cardinality ones whose domain it keeps.
Read from a batch's Parquet file, null counts come from the row groups' statistics and the other columns
are read one at a time as they are asked for, so profiling a day costs a fraction of reading it back
(bench/bench_profile_checks.py). From an in-memory table (a rebuild, a test) the same answers come from
the table itself, so both paths give the same profile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from pingan.core.storage import Store


@dataclass
class ProfileInput:
    num_rows: int
    column_names: list[str]
    null_counts: dict[str, int]
    head: pa.Table  # the first rows (at most the head size asked for)
    _read_column: Callable[[str], pa.ChunkedArray]
    _columns: dict[str, pa.ChunkedArray] = field(default_factory=dict)

    def column(self, name: str) -> pa.ChunkedArray:
        """One whole column (read once, then kept)."""
        if name not in self._columns:
            self._columns[name] = self._read_column(name)
        return self._columns[name]

    def type_of(self, name: str) -> pa.DataType:
        return self.head.schema.field(name).type


def from_table(table: pa.Table, head_rows: int) -> ProfileInput:
    return ProfileInput(
        table.num_rows,
        table.column_names,
        {name: table[name].null_count for name in table.column_names},
        table.slice(0, head_rows),
        lambda name: table[name],
    )


def from_batch_file(lake: Store, key: str, head_rows: int) -> ProfileInput:
    """A committed (or about to commit) batch file, read column by column as the profile needs it."""
    parquet = lake.parquet_file(key)
    meta = parquet.metadata
    names = parquet.schema_arrow.names
    head = _head(parquet, head_rows)
    nulls = _null_counts(parquet, names)
    return ProfileInput(
        meta.num_rows, names, nulls, head, lambda name: parquet.read(columns=[name]).column(0)
    )


def _head(parquet: pq.ParquetFile, rows: int) -> pa.Table:
    if parquet.metadata.num_rows == 0:
        return parquet.schema_arrow.empty_table()
    batches = []
    for batch in parquet.iter_batches(batch_size=min(rows, 65_536)):
        batches.append(batch)
        if sum(b.num_rows for b in batches) >= rows:
            break
    return pa.Table.from_batches(batches, schema=parquet.schema_arrow).slice(0, rows)


def _null_counts(parquet: pq.ParquetFile, names: list[str]) -> dict[str, int]:
    """Null counts from the row groups' statistics; a column without them is read and counted."""
    meta = parquet.metadata
    leaf = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    counts = {}
    for name in names:
        index = leaf.get(name)
        groups = range(meta.num_row_groups)
        stats = [meta.row_group(g).column(index).statistics for g in groups] if index is not None else [None]
        if all(s is not None and s.has_null_count for s in stats):
            counts[name] = sum(s.null_count for s in stats)
        else:
            counts[name] = parquet.read(columns=[name]).column(0).null_count
    return counts
