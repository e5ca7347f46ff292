"""What a share was built from: the raw-zone batches behind its rows, their quality, and the names in them.

Batches are read from the published warehouse's `raw.batches` (the committed batches the build read,
with their quarantine counts and raw files: warehouse/inputs.py), by id and only those a publication asks
for: a night that publishes the changed rows reads its own batches, not every manifest of the history.
A warehouse built before `raw.batches` carried these columns falls back to the lake's manifests.

The person names are the values of the PII-marked columns of those batches that hold names (no digits),
split on ';': the PII guard looks for them in every string column of the share.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pingan import raw_zone
from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store

_DIGIT = re.compile(r"\d")
UNKNOWN_MONTH = "unknown"  # the month of a batch id the warehouse does not hold


@dataclass(frozen=True)
class BatchRecord:
    """One source batch as a share's lineage names it (no personal data: counts and keys)."""

    batch_id: str
    feed: str
    load_date: str  # ISO date
    rows_written: int
    rows_quarantined: int
    quarantine_by_rule: dict[str, int]
    raw_keys: tuple[str, ...]

    def quality(self) -> dict:
        return {"batch_id": self.batch_id, "feed": self.feed, "load_date": self.load_date,
                "status": "committed", "rows_written": self.rows_written,
                "rows_quarantined": self.rows_quarantined, "quarantine_by_rule": self.quarantine_by_rule}  # fmt: skip


class SourceBatches:
    """Committed raw-zone batches by id, read once each per publication run."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lake: Store, specs: dict[str, FeedSpec]):
        self.con = con
        self.lake = lake
        self.specs = specs
        self._records: dict[str, BatchRecord | None] = {}
        self._names: dict[str, set[str]] = {}
        self._months: dict[str, str] = {}
        self._use_lake = not _has_lineage_columns(con)  # a warehouse built before raw.batches had them
        self._from_lake: dict[str, BatchRecord] | None = None  # read once, when first needed

    def records(self, batch_ids: list[str]) -> dict[str, BatchRecord | None]:
        """The records of these batches (None: not a batch the warehouse was built from)."""
        missing = sorted({b for b in batch_ids if b not in self._records})
        if missing:
            self._records.update(dict.fromkeys(missing))
            self._records.update(self._read(missing))
        return {b: self._records[b] for b in batch_ids}

    def months(self, batch_ids: list[str]) -> dict[str, str]:
        """Each batch's load month (YYYY-MM), or UNKNOWN_MONTH. Asked for every batch of a share's history
        each night: read as two columns, not as whole records (their quarantine counts and file lists)."""
        unread = sorted({b for b in batch_ids if b not in self._records and b not in self._months})
        if unread and self._use_lake:
            self.records(unread)
        elif unread:
            self._months.update(dict.fromkeys(unread, UNKNOWN_MONTH))
            self._months.update(self._read_months(unread))
        known = {b: r.load_date[:7] for b in batch_ids if (r := self._records.get(b)) is not None}
        return {b: known.get(b) or self._months.get(b, UNKNOWN_MONTH) for b in batch_ids}

    def quality(self, batch_ids: list[str]) -> list[dict]:
        return [
            r.quality() if r else {"batch_id": b, "status": "not_in_raw_zone"}
            for b, r in self.records(batch_ids).items()
        ]

    def person_names(self, batch_ids: list[str]) -> set[str]:
        names: set[str] = set()
        for batch_id, record in self.records(batch_ids).items():
            if batch_id not in self._names:
                self._names[batch_id] = self._read_names(record)
            names |= self._names[batch_id]
        return names

    def _read(self, batch_ids: list[str]) -> dict[str, BatchRecord]:
        if self._use_lake:
            if self._from_lake is None:
                self._from_lake = _lake_records(self.lake)
            return {b: self._from_lake[b] for b in batch_ids if b in self._from_lake}
        cursor = self.con.cursor()  # its own registration: the caller's connection may be mid-query
        cursor.register("_wanted_batches", pa.table({"batch_id": pa.array(batch_ids, pa.string())}))
        rows = cursor.execute(
            """SELECT b.batch_id, b.source_feed, CAST(b.load_date AS VARCHAR), b.rows_written,
                      b.rows_quarantined, b.quarantine_by_rule, b.raw_keys
               FROM raw.batches b JOIN _wanted_batches USING (batch_id)"""
        ).fetchall()
        return {
            r[0]: BatchRecord(
                r[0], r[1], r[2], int(r[3] or 0), int(r[4] or 0), json.loads(r[5] or "{}"), tuple(r[6] or ())
            )  # fmt: skip
            for r in rows
        }

    def _read_months(self, batch_ids: list[str]) -> dict[str, str]:
        cursor = self.con.cursor()
        cursor.register("_wanted_batches", pa.table({"batch_id": pa.array(batch_ids, pa.string())}))
        found = cursor.execute(
            """SELECT b.batch_id, strftime(b.load_date, '%Y-%m') AS month
               FROM raw.batches b JOIN _wanted_batches USING (batch_id)"""
        ).to_arrow_table()
        return dict(zip(found["batch_id"].to_pylist(), found["month"].to_pylist(), strict=True))

    def _read_names(self, record: BatchRecord | None) -> set[str]:
        spec = self.specs.get(record.feed) if record else None
        if not record or not spec or not spec.pii_columns or not record.raw_keys:
            return set()
        # raw-zone files have the entity's canonical schema: the spec's PII columns are all there
        columns = list(spec.pii_columns)
        try:
            table = self.lake.read_parquet(list(record.raw_keys), columns=columns)
        except FileNotFoundError:  # re-committed since the build (retention, erasure): new file names
            table = self.lake.read_parquet(self._current_keys(record), columns=columns)
        names: set[str] = set()
        for column in spec.pii_columns:
            for value in pc.unique(table[column].cast("string")).to_pylist():
                for part in (value or "").split(";"):
                    part = part.strip()
                    if part and not _DIGIT.search(part):
                        names.add(part)
        return names

    def _current_keys(self, record: BatchRecord) -> list[str]:
        """The batch's raw files as its day's manifest names them now."""
        manifest = raw_zone.committed_manifest_record(
            self.lake, record.feed, date.fromisoformat(record.load_date)
        )
        if manifest is None or manifest.batch_id != record.batch_id:
            raise FileNotFoundError(
                f"batch {record.batch_id} ({record.feed}, {record.load_date}): its raw files are gone and the "
                "lake no longer commits it; rebuild the warehouse (`pingan build`) and publish again"
            )
        return list(manifest.files.raw)


def _has_lineage_columns(con: duckdb.DuckDBPyConnection) -> bool:
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = 'batches'"
        ).fetchall()
    }
    return {"rows_quarantined", "quarantine_by_rule", "raw_keys"} <= columns


def _lake_records(lake: Store) -> dict[str, BatchRecord]:
    return {
        m.batch_id: BatchRecord(
            m.batch_id,
            m.feed,
            m.load_date.isoformat(),
            m.rows_written,
            m.rows_quarantined,
            dict(m.quarantine_by_rule),
            tuple(m.files.raw),
        )  # fmt: skip
        for m in raw_zone.committed_manifest_records(lake)
    }
