"""What a share was built from: the raw-zone batches behind its rows, their quality, and the names in them.

The quality record comes from the raw zone's committed manifests (status, rows, quarantine counts per
rule) until the quality package exposes a richer per-batch status. The person names are the values of
the PII-marked columns of those batches that hold names (no digits), split on ';': the PII guard looks
for them in every string column of the share.
"""

from __future__ import annotations

import re

import pyarrow.compute as pc

from pingan import raw_zone
from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store

_DIGIT = re.compile(r"\d")


class SourceBatches:
    """Committed raw-zone batches by id, read once per publication run."""

    def __init__(self, lake: Store, specs: dict[str, FeedSpec]):
        self.lake = lake
        self.specs = specs
        self.by_id = {m.batch_id: m for m in raw_zone.committed_manifest_records(lake)}
        self._names: dict[str, set[str]] = {}

    def quality(self, batch_ids: list[str]) -> list[dict]:
        out = []
        for batch_id in batch_ids:
            m = self.by_id.get(batch_id)
            if m is None:
                out.append({"batch_id": batch_id, "status": "not_in_raw_zone"})
                continue
            out.append(
                {
                    "batch_id": batch_id,
                    "feed": m.feed,
                    "load_date": m.load_date.isoformat(),
                    "status": m.status.value,
                    "rows_written": m.rows_written,
                    "rows_quarantined": m.rows_quarantined,
                    "quarantine_by_rule": dict(m.quarantine_by_rule),
                }
            )
        return out

    def person_names(self, batch_ids: list[str]) -> set[str]:
        names: set[str] = set()
        for batch_id in batch_ids:
            if batch_id not in self._names:
                self._names[batch_id] = self._read_names(batch_id)
            names |= self._names[batch_id]
        return names

    def _read_names(self, batch_id: str) -> set[str]:
        m = self.by_id.get(batch_id)
        spec = self.specs.get(m.feed) if m else None
        if not m or not spec or not spec.pii_columns or not m.files.raw:
            return set()
        # raw-zone files have the entity's canonical schema: the spec's PII columns are all there
        table = self.lake.read_parquet(m.files.raw, columns=list(spec.pii_columns))
        names: set[str] = set()
        for column in spec.pii_columns:
            for value in pc.unique(table[column].cast("string")).to_pylist():
                for part in (value or "").split(";"):
                    part = part.strip()
                    if part and not _DIGIT.search(part):
                        names.add(part)
        return names
