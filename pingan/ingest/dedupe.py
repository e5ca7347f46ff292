"""The dedupe stage: a record delivered twice in one batch is loaded once; what happens to the repeat depends
on whether its content differs.

While streaming, the first sighting of each record id goes on and repeats are held back (they are rare).
Once the batch is written, `resolve_repeats` compares each repeat with the version in the raw file:

- the same values: a plain repeat, quarantined as `duplicate_record`;
- other values, and the feed declares `corrections` (re-delivered records replace earlier ones by key):
  the latest wins, the replaced version goes to quarantine as `superseded_by_correction` (both kept);
- other values otherwise: quarantined as `conflicting_record`, naming the columns that differ, so a
  correction file is never mistaken for a harmless duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.canonical import quarantine_schema
from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store
from pingan.ingest.normalise import BatchInfo, quarantine_canonical

DUPLICATE = "duplicate_record"
CONFLICT = "conflicting_record"
SUPERSEDED = "superseded_by_correction"
# where a row came from, not what it says: a repeat from another file or line is still the same record
LINEAGE = {"source_file", "source_row", "batch_id", "ingested_at", "load_date", "extra_columns"}


class Deduper:
    """Remembers the record ids of the batch's earlier chunks; one per load."""

    def __init__(self, spec: FeedSpec, info: BatchInfo) -> None:
        self._spec, self._info = spec, info
        self._seen: set[str] = set()
        self.repeats: list[pa.Table] = []  # canonical rows of later sightings, in delivery order

    def split(self, good: pa.Table) -> pa.Table:
        """First sightings; repeats are kept for `resolve_repeats`. The usual case (no repeat) costs two
        C-level set passes."""
        ids = good.column("record_id").to_pylist()
        chunk_ids = set(ids)
        if len(chunk_ids) == len(ids) and self._seen.isdisjoint(chunk_ids):
            self._seen |= chunk_ids
            return good
        flags = []
        for rid in ids:
            flags.append(rid not in self._seen)
            self._seen.add(rid)
        keep = pa.array(flags)
        self.repeats.append(good.filter(pc.invert(keep)))
        return good.filter(keep)


@dataclass(frozen=True)
class Resolution:
    """What resolving the repeats did: quarantine records to add, and how many raw rows were replaced."""

    quarantine: pa.Table
    replaced: int = 0


def _content(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in LINEAGE}


def _differing(old: dict, new: dict) -> list[str]:
    return sorted(k for k, v in _content(new).items() if old.get(k) != v)


def resolve_repeats(
    lake: Store, raw_key: str, deduper: Deduper, spec: FeedSpec, info: BatchInfo
) -> Resolution:
    """Judge every held-back repeat against the version in the raw file; rewrite the raw file when a
    correction replaces rows."""
    if not deduper.repeats:
        return Resolution(quarantine_schema().empty_table())
    repeats = pa.concat_tables(deduper.repeats)
    raw = lake.read_parquet(raw_key)
    ids = pa.array(sorted(set(repeats["record_id"].to_pylist())), pa.string())
    in_raw = pc.is_in(raw["record_id"], value_set=ids)
    current = {r["record_id"]: r for r in raw.filter(in_raw).to_pylist()}
    kinds, superseded = [], []
    for row in repeats.to_pylist():
        old = current.get(row["record_id"])
        if old is None:  # its first delivery did not load (quarantined): nothing to compare or replace
            kinds.append((DUPLICATE, "record_id", f"{row['record_id']}: first delivery quarantined"))
            continue
        diff = _differing(old, row)
        if not diff:
            kinds.append((DUPLICATE, "record_id", row["record_id"]))
        elif spec.corrections is not None and spec.corrections.replace_by_key:
            superseded.append(old)
            current[row["record_id"]] = row
            kinds.append(None)
        else:
            kinds.append((CONFLICT, ",".join(diff), f"{row['record_id']}: differs in {', '.join(diff)}"))
    parts = [_quarantined(repeats, kinds, spec, info)]
    if superseded:
        parts.append(_replace(lake, raw_key, raw, in_raw, current, superseded, spec, info))
    return Resolution(pa.concat_tables(parts), len(superseded))


def _quarantined(repeats: pa.Table, kinds: list, spec: FeedSpec, info: BatchInfo) -> pa.Table:
    """Quarantine records of the repeats that did not replace anything."""
    idx = [i for i, k in enumerate(kinds) if k is not None]
    rows = repeats.take(pa.array(idx, pa.int64()))
    return quarantine_canonical(
        rows,
        spec,
        info,
        rules=pa.array([kinds[i][0] for i in idx], pa.string()),
        columns=pa.array([kinds[i][1] for i in idx], pa.string()),
        values=pa.array([kinds[i][2] for i in idx], pa.string()),
    )


def _replace(lake, raw_key, raw, in_raw, current, superseded, spec, info) -> pa.Table:
    """Write the raw file with the latest version of each corrected record; return the replaced ones as
    quarantine records."""
    replaced_ids = {r["record_id"] for r in superseded}
    keep = pc.invert(pc.is_in(raw["record_id"], value_set=pa.array(sorted(replaced_ids), pa.string())))
    latest = pa.Table.from_pylist([current[i] for i in sorted(replaced_ids)], schema=raw.schema)
    lake.write_parquet(raw_key, pa.concat_tables([raw.filter(keep), latest]))
    old = pa.Table.from_pylist(superseded, schema=raw.schema)
    n = old.num_rows
    return quarantine_canonical(
        old,
        spec,
        info,
        rules=pa.array([SUPERSEDED] * n),
        columns=pa.array(["record_id"] * n),
        values=old["record_id"].combine_chunks(),
    )
