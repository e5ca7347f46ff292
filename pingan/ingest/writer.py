"""The write stage: a batch's raw and quarantine Parquet files, and the count of every row that went where.

Raw rows are written in a background thread one table behind (compressing the previous block while the
next is parsed). A blocked batch's raw rows move to quarantine afterwards, so a blocked batch is never
visible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa

from pingan.core.canonical import quarantine_schema
from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store
from pingan.ingest.background_write import BackgroundWriter
from pingan.ingest.normalise import BatchInfo, quarantine_canonical


@dataclass
class RowCounts:
    """Every record read is written or quarantined; `by_rule` says why each quarantined one was."""

    read: int = 0
    written: int = 0
    quarantined: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)


class BatchWriter:
    """Appends to the batch's two files and counts what each received."""

    def __init__(self, raw: BackgroundWriter, quarantine, counts: RowCounts) -> None:
        self._raw, self._quarantine, self.counts = raw, quarantine, counts

    def write_good(self, table: pa.Table) -> None:
        self._raw.write_table(table)
        self.counts.written += table.num_rows

    def write_quarantine(self, table: pa.Table) -> None:
        self._quarantine.write_table(table)
        self.counts.quarantined += table.num_rows
        self.counts.by_rule.update(table["rule"].to_pylist())


@contextmanager
def open_batch_writer(
    lake: Store, raw_key: str, quarantine_key: str, schema: pa.Schema
) -> Iterator[BatchWriter]:
    """Both files open for the whole load; closing waits for the last background write (raising its error)."""
    with (
        lake.parquet_writer(raw_key, schema) as raw_file,
        lake.parquet_writer(quarantine_key, quarantine_schema()) as q_file,
    ):
        raw = BackgroundWriter(raw_file)
        try:
            yield BatchWriter(raw, q_file, RowCounts())
        finally:
            raw.close()


def block_batch(
    lake: Store, raw_key: str, quarantine_key: str, critical: list[str], spec: FeedSpec, info: BatchInfo
) -> int:
    """Move a blocked batch's raw rows to its quarantine file, tagged with the failed expectations; return
    how many moved."""
    good = lake.read_parquet(raw_key)
    rule = "batch_blocked:" + ",".join(critical)
    moved = quarantine_canonical(
        good,
        spec,
        info,
        rules=pa.array([rule] * good.num_rows),
        columns=pa.nulls(good.num_rows, pa.string()),
        values=pa.nulls(good.num_rows, pa.string()),
    )
    existing = lake.read_parquet(quarantine_key)
    lake.write_parquet(quarantine_key, pa.concat_tables([existing, moved]))
    lake.delete(raw_key)
    return good.num_rows


def append_quarantine(lake: Store, quarantine_key: str, table: pa.Table, counts: RowCounts) -> None:
    """Add quarantine records to a batch's closed quarantine file (rare: repeats resolved after streaming)."""
    if not table.num_rows:
        return
    existing = lake.read_parquet(quarantine_key)
    lake.write_parquet(quarantine_key, pa.concat_tables([existing, table]))
    counts.quarantined += table.num_rows
    counts.by_rule.update(table["rule"].to_pylist())
