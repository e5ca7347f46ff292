"""Each partner dataset is a Delta table (the `deltalake` package): one table version per published snapshot.

    share/<partner>/<dataset>/_delta_log/…        the Delta log: version n = the n-th snapshot
    share/<partner>/<dataset>/part-…parquet       data files of the versions
    share/<partner>/<dataset>/snapshots/<id>/     signed manifest of the snapshot (names its delta_version)

So any Delta reader, and the Delta Sharing server, can time-travel over the snapshots, while the signed
manifests stay the partner's proof of what was published.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pingan.core.storage import Store
from pingan.sharing.file_layout import month_batches, write_month_files

CDF_PROPERTY = "delta.enableChangeDataFeed"
FULL_SNAPSHOT_FILE_BYTES = 1024 * 1024  # delta-rs's estimate: about 0.5 MB of zstd parquet
# a month file below this (in memory) is joined with the next month: small aggregates stay one file
MONTH_FILE_MIN_BYTES = 16 * 1024


@dataclass(frozen=True)
class DeltaFile:
    path: str  # relative to the table's root
    size: int
    rows: int
    stats: str | None = None


def storage_options(store: Store) -> dict[str, str] | None:
    if store.scheme != "s3":
        return None
    s3 = store.s3
    return {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_ENDPOINT_URL": f"{'https' if s3.secure else 'http'}://{s3.endpoint}",
        "AWS_REGION": s3.region,
        "AWS_ALLOW_HTTP": "true",
        # one writer per table (the hub's publish run, under a lock): no external commit coordinator
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }


def table_uri(store: Store, prefix: str) -> str:
    return store.uri(prefix.rstrip("/"))


def for_delta(table: pa.Table) -> pa.Table:
    """Delta timestamps are UTC instants in microseconds: cast zoned timestamps to that (same instants)."""
    fields = []
    for f in table.schema:
        kind = f.type
        if pa.types.is_timestamp(kind):
            kind = pa.timestamp("us", "UTC") if kind.tz else pa.timestamp("us")
        fields.append(pa.field(f.name, kind, f.nullable))
    return table.cast(pa.schema(fields))


def write_version(
    store: Store,
    prefix: str,
    table: pa.Table,
    *,
    properties: dict[str, str] | None = None,
    time_column: str | None = None,
) -> int:
    """Overwrite the table with these rows as a new version; returns the version number.

    properties: Delta table properties (incremental.py: the change data feed, how long the log is kept).
    time_column: the grant's as-of column: files are cut per month of it (file_layout.py)."""
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    uri = table_uri(store, prefix)
    configuration = properties or None
    if configuration and exists(store, prefix):  # set before the write, not as a version after it
        ensure_properties(DeltaTable(uri, storage_options=storage_options(store)), configuration)
    per_month = month_batches(
        table, time_column, _rows_for(table, FULL_SNAPSHOT_FILE_BYTES), _rows_for(table, MONTH_FILE_MIN_BYTES)
    )
    if per_month and len(per_month) > 1:
        version = write_month_files(store, prefix, table.schema, per_month, configuration)
        if version is not None:
            return version
    write_deltalake(
        uri,
        table,
        mode="overwrite",
        schema_mode="overwrite",
        configuration=configuration,
        # files of bounded size: a later merge that updates or deletes an old row rewrites one such file,
        # not the whole history (rows come ordered by their record id, roughly by time)
        target_file_size=FULL_SNAPSHOT_FILE_BYTES,
        storage_options=storage_options(store),
        writer_properties=WriterProperties(compression="ZSTD"),
    )
    return DeltaTable(uri, storage_options=storage_options(store)).version()


def _rows_for(table: pa.Table, size: int) -> int:
    """Rows of about `size` bytes in memory (the measure delta-rs cuts files by)."""
    return max(1, size * table.num_rows // max(1, table.nbytes))


def ensure_properties(dt, properties: dict[str, str]) -> None:
    current = dt.metadata().configuration
    if any(current.get(k) != v for k, v in properties.items()):
        dt.alter.set_table_properties(properties)


def open_table(store: Store, prefix: str, version: int | None = None):
    from deltalake import DeltaTable

    return DeltaTable(table_uri(store, prefix), version=version, storage_options=storage_options(store))


def exists(store: Store, prefix: str) -> bool:
    return bool(store.list(prefix + "_delta_log/"))


def files(store: Store, prefix: str, version: int) -> list[DeltaFile]:
    actions = pa.table(open_table(store, prefix, version).get_add_actions(flatten=False)).to_pylist()
    return [
        DeltaFile(a["path"], int(a["size_bytes"]), int(a["num_records"] or 0), _stats(a)) for a in actions
    ]


def _stats(action: dict) -> str | None:
    rows = action.get("num_records")
    return None if rows is None else f'{{"numRecords":{int(rows)}}}'
