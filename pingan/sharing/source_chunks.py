"""A snapshot's source batches, stored per load month and shared between snapshots.

A share's rows come from every batch of the granted history (thousands at two years), and each snapshot
must name them (lineage: a partner traces a number back to its batch). One `sources.json` per snapshot
listing them all would be rewritten every night and kept per snapshot, so it would grow with history
twice over: in the night's time and in storage (a file of the whole history per night of retention).

So the batches are cut by their load month into chunk files under the dataset (`sources/<month>-<hash
of the month's batch ids>.json`: compact JSON, the batches' quality records in id order), and the
snapshot's `sources.json` (named in the manifest by sha256) lists the chunks with their sha256. A month
whose batches did not change keeps the chunk the previous snapshot named, unread and unwritten: a night
writes the chunk of the month it loaded (and of any month a rerun or withdrawal changed). A batch record
never changes once committed (a rerun is a new batch id), so a chunk's content follows from its ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from pingan.core.storage import Store
from pingan.sharing import manifest as mf
from pingan.sharing.lineage import SourceBatches


@dataclass(frozen=True)
class SourcesPlan:
    """What a snapshot's `sources.json` lists, and the chunk files it needs that do not exist yet."""

    chunks: list[dict]  # month, path, sha256, batch_count, ids_sha256, rows_quarantined, statuses
    new_files: dict[str, bytes] = field(default_factory=dict)  # path under the dataset prefix -> bytes

    @property
    def batch_count(self) -> int:
        return sum(c["batch_count"] for c in self.chunks)

    def quality_summary(self) -> dict:
        return {
            "batches": self.batch_count,
            "statuses": sorted({s for c in self.chunks for s in c["statuses"]}),
            "rows_quarantined": sum(c["rows_quarantined"] for c in self.chunks),
        }


def plan(batch_ids: list[str], sources: SourceBatches, previous: list[dict]) -> SourcesPlan:
    """Chunks for these batches: the previous snapshot's where a month's batch ids are the same, new
    ones (records read from `sources`) for the months that changed."""
    by_month: dict[str, list[str]] = {}
    for batch_id, month in sources.months(sorted(set(batch_ids))).items():
        by_month.setdefault(month, []).append(batch_id)
    kept = {(c["month"], c["ids_sha256"]): c for c in previous}
    chunks, new_files = [], {}
    for month, ids in sorted(by_month.items()):
        ids_sha256 = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        chunk = kept.get((month, ids_sha256))
        if chunk is None:
            records = sources.quality(ids)
            data = json.dumps({"format": mf.FORMAT, "month": month, "batches": records}, ensure_ascii=False,
                              sort_keys=True, separators=(",", ":")).encode()  # fmt: skip
            path = f"{mf.SOURCE_CHUNKS}{month}-{ids_sha256[:16]}.json"
            new_files[path] = data
            chunk = {"month": month, "path": path, "sha256": mf.sha256(data), "batch_count": len(ids),
                     "ids_sha256": ids_sha256, "rows_quarantined": sum(r.get("rows_quarantined") or 0 for r in records),
                     "statuses": sorted({r["status"] for r in records})}  # fmt: skip
        chunks.append(chunk)
    return SourcesPlan(chunks, new_files)


def write(
    shares: Store, dataset_prefix: str, snapshot: str, partner: str, dataset: str, sources: SourcesPlan
) -> bytes:
    """The new chunk files, then the snapshot's `sources.json` (returned: the manifest names its sha256)."""
    for path, data in sources.new_files.items():
        shares.put_bytes(dataset_prefix + path, data, "application/json")
    document = {"format": mf.FORMAT, "partner": partner, "dataset": dataset,
                "batch_count": sources.batch_count, "chunks": sources.chunks}  # fmt: skip
    data = mf.encode(document)
    shares.put_bytes(snapshot + mf.SOURCES, data, "application/json")
    return data


def previous_chunks(shares: Store, dataset_prefix: str, manifest: mf.SnapshotManifest | None) -> list[dict]:
    """The chunks the previous (verified) snapshot's `sources.json` lists whose files are still there and
    unaltered (a chunk deleted or changed since is written again, not carried into the new snapshot); []
    when it has none (a first snapshot, a sources file of the earlier one-file form, one that does not
    match its manifest)."""
    if manifest is None:
        return []
    snapshot = f"{dataset_prefix}{mf.SNAPSHOTS}{manifest.snapshot_id}/"
    data = shares.get_bytes(snapshot + mf.SOURCES)
    if data is None or mf.sha256(data) != manifest.source.get("batches_sha256"):
        return []
    chunks = json.loads(data).get("chunks") or []
    return [c for c in chunks if _intact(shares, dataset_prefix, c)]


def _intact(shares: Store, dataset_prefix: str, chunk: dict) -> bool:
    if not mf.SOURCE_CHUNK_PATH.fullmatch(str(chunk.get("path", ""))):
        return False
    data = shares.get_bytes(dataset_prefix + chunk["path"])
    return data is not None and mf.sha256(data) == chunk.get("sha256")


def referenced(shares: Store, dataset_prefix: str, snapshot_ids: list[str]) -> set[str]:
    """The chunk paths these snapshots' `sources.json` files list."""
    paths: set[str] = set()
    for snapshot_id in snapshot_ids:
        data = shares.get_bytes(f"{dataset_prefix}{mf.SNAPSHOTS}{snapshot_id}/{mf.SOURCES}")
        if data is not None:
            paths |= {c["path"] for c in json.loads(data).get("chunks") or []}
    return paths


def collect_garbage(shares: Store, dataset_prefix: str, kept_snapshot_ids: list[str]) -> int:
    """Delete the chunk files no kept snapshot lists (retention removed the last snapshots naming them)."""
    keep = referenced(shares, dataset_prefix, kept_snapshot_ids)
    gone = [k for k in shares.list(dataset_prefix + mf.SOURCE_CHUNKS) if k[len(dataset_prefix) :] not in keep]
    for key in gone:
        shares.delete(key)
    return len(gone)
