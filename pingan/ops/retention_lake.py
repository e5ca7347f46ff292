"""Retention of raw personal data in the lake (PIPL art. 19, 47): past its entity's period, only pseudonyms.

Each entity declares how long its raw personal data is kept (canonical PERSONAL_DATA_RETENTION_DAYS, counted
from the batch's load date, the same periods as the restricted store). For every committed batch past it:

- **raw files**: each personal-data column (canonical PERSONAL_DATA) is replaced by its keyed pseudonym,
  element by element for lists: exactly what the warehouse's raw views compute, and `pingan_pseudonym`
  returns a pseudonym unchanged, so a full refresh after retention builds the same pseudonymised facts
  (distinct and repeat callers still count). Everything else in the row stays;
- **quarantine files**: the rejected value and the whole source row (`value`, `record`) are dropped; the
  rule, column and lineage stay, so what was quarantined and why still counts;
- **quality results**: the stored GX validations lose their value samples; the counts stay.

Rewritten files are committed the way erasure commits them (new names, one manifest write, old files
deleted; pingan.ops.erasure_lake), re-encrypted under the lake key. A treated day gets a marker
(`_retention/lake/<feed>/load_date=D.done`, cleared by any later commit of the day), so a night reads only
the days whose period ended since, and a rerun changes nothing. One audit entry with counts, never values.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from pingan import raw_zone
from pingan.core import audit
from pingan.core.canonical import PERSONAL_DATA, PERSONAL_DATA_RETENTION_DAYS
from pingan.core.pseudonym import pseudonym, pseudonym_list
from pingan.core.storage import Store
from pingan.ops.erasure_lake import ErasureBlocked, revised_key
from pingan.quality.results_store import PREFIX as QUALITY_PREFIX
from pingan.raw_zone import retention

QUARANTINE_VALUE_COLUMNS = ("value", "record")
# GX result keys holding source values (SUMMARY keeps only the partial ones; all listed to be safe)
SAMPLE_KEYS = (
    "partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
    "unexpected_list", "unexpected_index_list", "unexpected_rows", "details",
)  # fmt: skip
TREATMENTS = {"pseudonym": pseudonym, "pseudonym_list": pseudonym_list}


@dataclass
class LakeRetentionCounts:
    as_of: date
    batches: Counter[str] = field(default_factory=Counter)  # entity -> batches past retention changed
    values: Counter[str] = field(default_factory=Counter)  # entity.column -> raw values pseudonymised
    quarantine_rows: int = 0  # quarantined rows whose source values were dropped
    validations: int = 0  # stored GX validations whose samples were dropped

    def audit_detail(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "batches": dict(self.batches),
            "values_pseudonymised": dict(self.values),
            "quarantine_rows_cleared": self.quarantine_rows,
            "validations_cleared": self.validations,
            "retention_days": PERSONAL_DATA_RETENTION_DAYS,
        }


def past_retention(manifest: raw_zone.Manifest, as_of: date) -> bool:
    days = PERSONAL_DATA_RETENTION_DAYS.get(manifest.entity)
    return days is not None and manifest.load_date <= as_of - timedelta(days=days)


def apply_lake_retention(lake: Store, hub_key: bytes, audit_store: Store, as_of: date) -> LakeRetentionCounts:
    """Pseudonymise raw personal data and drop quarantined values and samples past retention on `as_of`;
    refused while a build reads the lake (its views name the files this replaces)."""
    leases = retention.live_leases(lake)
    if leases:
        raise ErasureBlocked(f"{len(leases)} build(s) are reading the lake: retention runs after they end")
    counts = LakeRetentionCounts(as_of)
    for manifest in untreated_past(lake, as_of):
        if manifest.entity in PERSONAL_DATA_RETENTION_DAYS and not past_retention(manifest, as_of):
            continue  # its period has not ended: read again on a later night
        if past_retention(manifest, as_of) and _retain_batch(lake, manifest, hub_key, counts):
            counts.batches[manifest.entity] += 1
        lake.put_bytes(raw_zone.retained_marker_key(manifest.feed, manifest.load_date), b"", "text/plain")
    audit.append(audit_store, "personal_data_retention", tier="lake", **counts.audit_detail())
    return counts


def untreated_past(lake: Store, as_of: date):
    """The committed manifests of days past the shortest retention period that retention has not treated
    yet (one listing of manifests and one of markers; only those days' manifests are read): the night's
    retention costs what tonight's expiries cost, not the history already treated."""
    shortest = min(PERSONAL_DATA_RETENTION_DAYS.values())
    done = set(lake.list("_retention/lake/"))
    for feed, day in raw_zone.committed_days(lake):
        if day <= as_of - timedelta(days=shortest) and raw_zone.retained_marker_key(feed, day) not in done:
            manifest = raw_zone.committed_manifest_record(lake, feed, day)
            if manifest is not None:
                yield manifest


def _retain_batch(
    lake: Store, manifest: raw_zone.Manifest, hub_key: bytes, counts: LakeRetentionCounts
) -> bool:
    """Rewrite the batch's files past retention and commit them; whether anything changed."""
    renamed: dict[str, str] = {}
    for key in manifest.files.raw:
        table, changed = pseudonymise_table(lake.read_parquet(key), manifest.entity, hub_key)
        if sum(changed.values()):
            renamed[key] = _put_revised(lake, key, table)
            counts.values.update({f"{manifest.entity}.{c}": n for c, n in changed.items()})
    for key in manifest.files.quarantine:
        table, rows = clear_quarantine_values(lake.read_parquet(key))
        if rows:
            renamed[key] = _put_revised(lake, key, table)
            counts.quarantine_rows += rows
    counts.validations += _clear_validation_samples(lake, manifest)
    if not renamed:
        return False
    files = manifest.files.model_copy(
        update={
            zone: [renamed.get(k, k) for k in getattr(manifest.files, zone)] for zone in ("raw", "quarantine")
        }
    )
    raw_zone.commit(lake, manifest.model_copy(update={"files": files}))
    for old in renamed:
        lake.delete(old)
    return True


def _put_revised(lake: Store, key: str, table: pa.Table) -> str:
    new_key = revised_key(key)
    lake.put_bytes(new_key, lake.parquet_bytes(key, table))
    return new_key


def pseudonymise_table(table: pa.Table, entity: str, hub_key: bytes) -> tuple[pa.Table, dict[str, int]]:
    """The table with each personal-data column as keyed pseudonyms; how many values each column changed."""
    changed: dict[str, int] = {}
    for column, treatment in PERSONAL_DATA.get(entity, {}).items():
        if column not in table.column_names:
            continue
        before = table[column].to_pylist()
        after = [TREATMENTS[treatment](hub_key, v) if isinstance(v, str) else v for v in before]
        changed[column] = sum(1 for a, b in zip(before, after, strict=True) if a != b)
        if changed[column]:
            index = table.column_names.index(column)
            table = table.set_column(index, table.field(column), pa.array(after, table.field(column).type))
    return table, changed


def clear_quarantine_values(table: pa.Table) -> tuple[pa.Table, int]:
    """The quarantine table without its source values; how many rows held any."""
    present = [c for c in QUARANTINE_VALUE_COLUMNS if c in table.column_names]
    if not present or not table.num_rows:
        return table, 0
    held = functools.reduce(pc.or_, [pc.is_valid(table[c]) for c in present])
    for column in present:
        index = table.column_names.index(column)
        table = table.set_column(
            index, table.field(column), pa.nulls(table.num_rows, table.field(column).type)
        )
    return table, pc.sum(held).as_py() or 0


def _clear_validation_samples(lake: Store, manifest: raw_zone.Manifest) -> int:
    """Drop the value samples of the batch's stored GX validations (one object write each)."""
    cleared = 0
    for key in lake.list(f"{QUALITY_PREFIX}/validations/{manifest.feed}/{manifest.batch_id}/"):
        data = json.loads(lake.get_bytes(key) or b"{}")
        removed = [
            res["result"].pop(k)
            for res in data.get("results", [])
            for k in SAMPLE_KEYS
            if isinstance(res.get("result"), dict) and k in res["result"]
        ]
        if removed:
            lake.put_bytes(key, json.dumps(data, ensure_ascii=False).encode(), "application/json")
            cleared += 1
    return cleared
