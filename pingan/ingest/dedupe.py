"""The dedupe stage: a record delivered twice in one batch is loaded once (the first); repeats go to quarantine."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.canonical import quarantine_schema
from pingan.core.feed_spec import FeedSpec
from pingan.ingest.normalise import BatchInfo, quarantine_canonical


class Deduper:
    """Remembers the record ids of the batch's earlier chunks; one per load."""

    def __init__(self, spec: FeedSpec, info: BatchInfo) -> None:
        self._spec, self._info = spec, info
        self._seen: set[str] = set()

    def split(self, good: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(first sightings, quarantine records of the repeats). The usual case (no repeat) costs two C-level
        set passes."""
        ids = good.column("record_id").to_pylist()
        chunk_ids = set(ids)
        if len(chunk_ids) == len(ids) and self._seen.isdisjoint(chunk_ids):
            self._seen |= chunk_ids
            return good, quarantine_schema().empty_table()
        return self._split_repeats(good, ids)

    def _split_repeats(self, good: pa.Table, ids: list[str]) -> tuple[pa.Table, pa.Table]:
        """Slow path, only for chunks holding a repeat: keep each id's first sighting in delivery order."""
        flags = []
        for rid in ids:
            flags.append(rid not in self._seen)
            self._seen.add(rid)
        keep = pa.array(flags)
        dup = good.filter(pc.invert(keep))
        n = dup.num_rows
        quarantined = quarantine_canonical(
            dup,
            self._spec,
            self._info,
            rules=pa.array(["duplicate_record"] * n),
            columns=pa.array(["record_id"] * n),
            values=dup["record_id"].combine_chunks(),
        )
        return good.filter(keep), quarantined
