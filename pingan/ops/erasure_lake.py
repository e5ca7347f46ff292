"""Erasure and correction in the lake: raw and quarantine Parquet files, never a half-written batch.

A committed batch is changed the way a load commits one: its changed files are written under new names in
the same batch folder (`part-00000-r<token>.parquet`), then the manifest naming them is committed (one
object write: readers see the old batch or the new one), then the old files are deleted. The batch id and
its row counts stay (values are removed, not rows), so the warehouse's lineage and the shares' source lists
still hold. Files no manifest commits (a blocked load's quarantine, a superseded batch awaiting its sweep,
a crashed load's leftovers) are rewritten in place, one atomic object write each.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from dataclasses import dataclass, field

from pingan import raw_zone
from pingan.core.canonical import PERSONAL_DATA
from pingan.core.storage import Store
from pingan.ops.subject import ValueChange, change_table
from pingan.raw_zone import retention

ZONES = ("raw", "quarantine")
# quarantined rows keep the source values as text: `value` is the rejected value itself
QUARANTINE_IDENTIFIER_COLUMNS = {"value"}


class ErasureBlocked(RuntimeError):
    """The lake cannot be changed now (a build is reading it); the message says what to wait for."""


@dataclass
class LakeCounts:
    rows: Counter[str] = field(default_factory=Counter)  # zone -> rows changed
    files: Counter[str] = field(default_factory=Counter)  # zone -> files rewritten
    batches: int = 0  # committed batches re-committed with changed files


def change_lake(lake: Store, change: ValueChange) -> LakeCounts:
    """Apply `change` to every raw and quarantine file of the lake."""
    leases = retention.live_leases(lake)
    if leases:
        raise ErasureBlocked(
            f"{len(leases)} build(s) are reading the lake ({', '.join(lease.build_id for lease in leases)}): "
            "run the erasure after they end"
        )
    counts = LakeCounts()
    committed: set[str] = set()
    for manifest in raw_zone.committed_manifest_records(lake):
        committed.update(manifest.files.raw + manifest.files.quarantine)
        _change_committed(lake, manifest, change, counts)
    for zone in ZONES:
        for key in lake.list(f"{zone}/"):
            if key.endswith(".parquet") and key not in committed:
                _change_in_place(lake, key, zone, change, counts)
    return counts


def _change_committed(
    lake: Store, manifest: raw_zone.Manifest, change: ValueChange, counts: LakeCounts
) -> None:
    renamed: dict[str, str] = {}
    for zone, keys in (("raw", manifest.files.raw), ("quarantine", manifest.files.quarantine)):
        for key in keys:
            data = _changed_file(lake, key, _identifier_columns(zone, manifest.entity), change)
            if data is None:
                continue
            new_key = revised_key(key)
            lake.put_bytes(new_key, data[0])
            renamed[key] = new_key
            counts.rows[zone] += data[1]
            counts.files[zone] += 1
    if not renamed:
        return
    files = manifest.files.model_copy(
        update={
            "raw": [renamed.get(k, k) for k in manifest.files.raw],
            "quarantine": [renamed.get(k, k) for k in manifest.files.quarantine],
        }
    )
    raw_zone.commit(lake, manifest.model_copy(update={"files": files}))
    for old in renamed:
        lake.delete(old)
    counts.batches += 1


def _change_in_place(lake: Store, key: str, zone: str, change: ValueChange, counts: LakeCounts) -> None:
    entity = key.split("/", 2)[1]
    data = _changed_file(lake, key, _identifier_columns(zone, entity), change)
    if data is not None:
        lake.put_bytes(key, data[0])
        counts.rows[zone] += data[1]
        counts.files[zone] += 1


def _changed_file(
    lake: Store, key: str, identifier_columns: set[str], change: ValueChange
) -> tuple[bytes, int] | None:
    """The file's new bytes and rows changed, or None when it does not hold the person."""
    table = lake.read_parquet(key)
    changed, rows = change_table(table, change, identifier_columns)
    if not rows:
        return None
    return lake.parquet_bytes(key, changed), rows


def _identifier_columns(zone: str, entity: str) -> set[str]:
    return QUARANTINE_IDENTIFIER_COLUMNS if zone == "quarantine" else set(PERSONAL_DATA.get(entity, {}))


def revised_key(key: str) -> str:
    return re.sub(r"(-r[0-9a-f]+)?\.parquet$", f"-r{secrets.token_hex(4)}.parquet", key)
