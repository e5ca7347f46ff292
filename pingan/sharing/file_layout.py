"""How a full snapshot's rows are laid out in files: ordered by the grant's as-of column and cut at every
month, so that a night's merge, which rewrites the files holding the rows it updates or deletes (the
recent ones: `match_from` bounds them), rewrites a month or two, not the whole history, and a partner's
pull of the night fetches those files only (issue 16: at two years a single-file dataset was downloaded
whole every night, 110 kB for a night of 9 kB).

delta-rs's writer joins small record batches into files of 1,024 rows or more, so the month files are
written one by one and committed together (write_month_files).
"""

from __future__ import annotations

import json
import secrets

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.storage import Store

STAGING = "_staging/"  # under the table: one-file tables being moved into it, removed at once
_TAKEABLE = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}


def month_batches(
    table: pa.Table, column: str | None, max_rows: int, min_rows: int = 1
) -> list[pa.RecordBatch] | None:
    """The table's rows ordered by `column` (a date or timestamp; nulls last) in batches of whole calendar
    months (UTC): months are joined, oldest first, until a batch holds `min_rows` (a file per month of a
    small aggregate would be mostly Parquet footer), and a month above `max_rows` is cut. The newest
    months, which nights change most, end up in the smallest batches. None when the column is absent or
    not a time (the caller then lets delta-rs cut by size)."""
    if table.num_rows == 0 or column not in table.column_names:
        return None
    kind = table.schema.field(column).type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        return None
    order = pc.sort_indices(pa.table({"x": table[column]}), sort_keys=[("x", "ascending", "at_end")])
    try:
        ordered = _take(table, order)
    except pa.ArrowNotImplementedError:  # a column type pyarrow cannot reorder: keep delta-rs's layout
        return None
    batches = []
    for start, end in _joined(_month_ends(_months(ordered[column])), ordered.num_rows, min_rows):
        for first in range(start, end, max(1, max_rows)):
            batches.append(ordered.slice(first, min(max_rows, end - first)).combine_chunks().to_batches()[0])
    return [b for b in batches if b.num_rows]


def _joined(month_ends: list[int], rows: int, min_rows: int) -> list[tuple[int, int]]:
    """(start, end) row ranges of whole months, each at least `min_rows` long but the last."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for end in [*month_ends, rows]:
        if end - start >= min_rows or end == rows:
            ranges.append((start, end))
            start = end
    return ranges


def _take(table: pa.Table, indices: pa.Array) -> pa.Table:
    columns = []
    for column in table.columns:
        via = _TAKEABLE.get(column.type)
        columns.append(column.cast(via).take(indices).cast(column.type) if via else column.take(indices))
    return pa.table(columns, schema=table.schema)


def _months(values: pa.ChunkedArray) -> pa.Array:
    """Year * 12 + month of each value (UTC for a timestamp), null for a null."""
    values = values.combine_chunks()
    if pa.types.is_timestamp(values.type) and values.type.tz is not None:
        values = values.cast(pa.timestamp(values.type.unit, "UTC"))
    return pc.add(pc.multiply(pc.year(values), 12), pc.month(values))


def _month_ends(months: pa.Array) -> list[int]:
    """Row positions where the month changes (a null after the last month counts as a change)."""
    current, following = months.slice(0, len(months) - 1), months.slice(1)
    changed = pc.fill_null(pc.not_equal(current, following), True)
    both_null = pc.and_(pc.is_null(current), pc.is_null(following))
    changed = pc.and_(changed, pc.invert(both_null))
    return [i + 1 for i in pc.indices_nonzero(changed).to_pylist()]


def write_month_files(
    store: Store, prefix: str, schema: pa.Schema, batches: list[pa.RecordBatch], configuration: dict | None
) -> int | None:
    """Overwrite the Delta table at `prefix` with one file per batch, in one commit; the new version, or
    None (nothing committed) when the table exists with another schema: delta-rs's own overwrite then
    replaces the schema. delta-rs's writer joins small batches into files of 1,024 rows or more, so each
    batch is written alone to a staging table (delta-rs computes the file's statistics, which merges skip
    files by), moved beside the table's files, and every file committed together."""
    from deltalake import DeltaTable
    from deltalake.transaction import create_table_with_add_actions

    from pingan.sharing import delta

    store.delete_prefix(prefix + STAGING)  # a crashed write's leftovers (one writer: the publish lock)
    staged = [_stage(store, prefix, schema, batch) for batch in batches]
    delta_schema = staged[0][1]
    existing = delta.open_table(store, prefix) if delta.exists(store, prefix) else None
    if existing is not None and existing.schema().to_json() != delta_schema.to_json():
        for add, _ in staged:
            store.delete(prefix + add.path)
        return None
    adds = [add for add, _ in staged]
    options = delta.storage_options(store)
    if existing is None:
        create_table_with_add_actions(delta.table_uri(store, prefix), delta_schema, adds, mode="overwrite",
                                      configuration=configuration, storage_options=options)  # fmt: skip
    else:
        existing.create_write_transaction(adds, mode="overwrite", schema=delta_schema)
    return DeltaTable(delta.table_uri(store, prefix), storage_options=options).version()


def _stage(store: Store, prefix: str, schema: pa.Schema, batch: pa.RecordBatch):
    """Write one batch as a one-file staging table, move its file to the table's root; (its add action,
    the staging table's Delta schema)."""
    from deltalake import DeltaTable, WriterProperties, write_deltalake
    from deltalake.transaction import AddAction

    from pingan.sharing import delta

    staging = f"{prefix}{STAGING}{secrets.token_hex(8)}/"
    uri, options = delta.table_uri(store, staging), delta.storage_options(store)
    write_deltalake(uri, pa.Table.from_batches([batch], schema), mode="error", storage_options=options,
                    writer_properties=WriterProperties(compression="ZSTD"))  # fmt: skip
    delta_schema = DeltaTable(uri, storage_options=options).schema()
    log = store.get_bytes(staging + "_delta_log/00000000000000000000.json").decode()
    (add,) = [json.loads(line)["add"] for line in log.splitlines() if '"add"' in line[:10]]
    store.put_bytes(prefix + add["path"], store.get_bytes(staging + add["path"]), "application/octet-stream")
    store.delete_prefix(staging)
    action = AddAction(path=add["path"], size=int(add["size"]), partition_values={},
                       modification_time=int(add["modificationTime"]), data_change=True, stats=add["stats"])  # fmt: skip
    return action, delta_schema
