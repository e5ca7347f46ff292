"""The raw zone: canonical Parquet per feed and load date, visible only once its manifest is committed.

Layout (identical on local disk and S3):

    raw/<entity>/jurisdiction=<code>/load_date=<YYYY-MM-DD>/feed=<feed>/batch=<batch_id>/part-00000.parquet
    quarantine/<entity>/jurisdiction=<code>/load_date=<YYYY-MM-DD>/feed=<feed>/batch=<batch_id>/part-00000.parquet
    _batches/<feed>/<batch_id>.json              every attempt: committed, blocked or failed
    _manifests/<feed>/load_date=<YYYY-MM-DD>.json  the commit: which batch is the truth for that day

A load writes its batch files, then its batch record, then the manifest, last. Readers (dbt sources,
status, sharing) follow manifests only, so files of a crashed or superseded batch are never read; the
next load of that feed and day deletes a crashed batch's files, and a superseded batch's once no running
build can still read them (pingan/raw_zone/retention.py). Cursors of incremental feeds live in the manifests
(cursor_before/cursor_after), so any worker can resume and a rerun of a day reuses that day's window.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import date, timedelta

from pingan.core.status import BatchStatus
from pingan.core.storage import Store
from pingan.raw_zone import manifest_index
from pingan.raw_zone import retention as retention_mod
from pingan.raw_zone.manifest import MANIFEST_VERSION, Manifest  # noqa: F401 - re-exported for the raw zone's readers


def partition_prefix(zone: str, entity: str, jurisdiction: str, load_date: date, feed: str) -> str:
    return f"{zone}/{entity}/jurisdiction={jurisdiction}/load_date={load_date.isoformat()}/feed={feed}/"


def batch_prefix(zone: str, entity: str, jurisdiction: str, load_date: date, feed: str, batch_id: str) -> str:
    return partition_prefix(zone, entity, jurisdiction, load_date, feed) + f"batch={batch_id}/"


def manifest_key(feed: str, load_date: date) -> str:
    return f"_manifests/{feed}/load_date={load_date.isoformat()}.json"


def retained_marker_key(feed: str, load_date: date) -> str:
    """Written once lake retention has treated the day's committed batch; every commit of the day clears it
    (a rerun brings raw values back), so the nightly retention reads only the days it has not treated."""
    return f"_retention/lake/{feed}/load_date={load_date.isoformat()}.done"


def batch_record_key(feed: str, batch_id: str) -> str:
    return f"_batches/{feed}/{batch_id}.json"


def _dump(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode("utf-8")


def read_json(store: Store, key: str) -> dict | None:
    data = store.get_bytes(key)
    return json.loads(data) if data is not None else None


def write_batch_record(lake: Store, record: Manifest, *, durable: bool = True) -> None:
    lake.put_bytes(
        batch_record_key(record.feed, record.batch_id),
        _dump(record.to_json()),
        "application/json",
        durable=durable,
    )


def record_attempt_failure(
    lake: Store,
    *,
    feed: str,
    entity: str,
    jurisdiction: str,
    load_date: date,
    batch_id: str,
    status: BatchStatus,
    error: str,
    started_at: str,
    finished_at: str,
) -> None:
    """A load that ended without a batch (late source, rejected file, broken source) still leaves a record,
    so `pingan status` can say what happened to that feed and day."""
    write_batch_record(
        lake,
        Manifest(
            feed=feed,
            entity=entity,
            jurisdiction_code=jurisdiction,
            load_date=load_date,
            batch_id=batch_id,
            status=status,
            error=error,
            started_at=started_at,
            finished_at=finished_at,
        ),
    )


def start_attempt(
    lake: Store, *, feed: str, entity: str, jurisdiction: str, load_date: date, batch_id: str, started_at: str
) -> None:
    """Record a load as `running` before it reads anything. The load replaces the record when it ends; a
    load killed before that leaves it, and `attempt_status` then reports the batch `interrupted`."""
    write_batch_record(
        lake,
        Manifest(
            feed=feed,
            entity=entity,
            jurisdiction_code=jurisdiction,
            load_date=load_date,
            batch_id=batch_id,
            status=BatchStatus.RUNNING,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=started_at,
        ),
        durable=False,
    )  # lost in a power cut, the load is as invisible as if it never started


def drop_attempt(lake: Store, feed: str, batch_id: str) -> None:
    """Forget a `running` record of a load that failed with an error (its caller records the failure)."""
    lake.delete(batch_record_key(feed, batch_id))


def attempt_status(record: Manifest, superseded: bool) -> BatchStatus:
    """The status to show for a batch record: a `running` record whose process is gone (or that a later
    attempt of the same feed and day followed) is an `interrupted` load."""
    if record.status != BatchStatus.RUNNING:
        return record.status
    same_host = record.host == socket.gethostname()
    if superseded or (same_host and not retention_mod.process_alive(record.pid or 0)):
        return BatchStatus.INTERRUPTED
    return BatchStatus.RUNNING


def commit(lake: Store, manifest: Manifest | dict) -> None:
    """Make a batch the truth for its feed and day: one object write, so it is atomic for readers.

    A dict (the stored JSON shape, as bench scripts build it) is read into a `Manifest` first."""
    if isinstance(manifest, dict):
        manifest = Manifest.from_json(manifest)
    if not manifest.balanced:
        raise AssertionError(
            f"{manifest.feed} {manifest.load_date}: rows read {manifest.rows_read} != written "
            f"{manifest.rows_written} + quarantined {manifest.rows_quarantined}; refusing to commit"
        )
    write_batch_record(lake, manifest)
    lake.put_bytes(
        manifest_key(manifest.feed, manifest.load_date), _dump(manifest.to_json()), "application/json"
    )
    lake.delete(retained_marker_key(manifest.feed, manifest.load_date))


def _read_all(lake: Store, prefix: str) -> list[dict]:
    return [
        m for m in (read_json(lake, k) for k in lake.list(prefix) if k.endswith(".json")) if m is not None
    ]


def committed_manifest_record(lake: Store, feed: str, load_date: date) -> Manifest | None:
    """The committed manifest of a feed and day, typed; None if the day has no commit."""
    data = read_json(lake, manifest_key(feed, load_date))
    return Manifest.from_json(data) if data is not None else None


def committed_manifest_records(lake: Store, feed: str | None = None) -> list[Manifest]:
    """Every committed manifest (of one feed, or all), typed, in feed and load-date order (read through the
    per-feed index the listing validates: pingan/raw_zone/manifest_index.py)."""
    return manifest_index.committed_manifests(lake, feed)


def attempt_record(lake: Store, feed: str, batch_id: str) -> Manifest | None:
    """One attempt's batch record, typed; None if the batch left none."""
    data = read_json(lake, batch_record_key(feed, batch_id))
    return Manifest.from_json(data) if data is not None else None


def attempt_records(lake: Store, feed: str | None = None) -> list[Manifest]:
    """Every load attempt's batch record (committed, blocked, failed, late, running), typed, in start order."""
    records = [Manifest.from_json(r) for r in _read_all(lake, f"_batches/{feed}/" if feed else "_batches/")]
    return sorted(records, key=lambda r: (r.feed, r.load_date, r.started_at or ""))


def committed_days(lake: Store) -> list[tuple[str, date]]:
    """(feed, load date) of every committed day, from the manifests' key names (one listing, no reads)."""
    out = []
    for key in lake.list("_manifests/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2].startswith("load_date=") and parts[2].endswith(".json"):
            out.append((parts[1], date.fromisoformat(parts[2][len("load_date=") : -len(".json")])))
    return sorted(out)


def committed_dates(lake: Store, feed: str) -> list[date]:
    """Days with a committed batch, read from the manifests' key names (one listing, no object reads)."""
    prefix = f"_manifests/{feed}/load_date="
    return sorted(
        date.fromisoformat(k[len(prefix) : -len(".json")])
        for k in lake.list(f"_manifests/{feed}/")
        if k.startswith(prefix) and k.endswith(".json")
    )


def cursor_before(lake: Store, feed: str, load_date: date) -> str | None:
    """The window start for an incremental load of `load_date`.

    A rerun reuses the cursor its day was first loaded with (same window, same content); a new day starts
    where the latest committed earlier day ended.
    """
    existing = committed_manifest_record(lake, feed, load_date)
    if existing is not None:
        return existing.cursor_before
    earlier = [d for d in committed_dates(lake, feed) if d < load_date]
    return committed_manifest_record(lake, feed, earlier[-1]).cursor_after if earlier else None


@dataclass(frozen=True)
class RawBatch:
    """One committed batch as the warehouse sees it: which feed and day it is the truth for, and its files."""

    feed: str
    entity: str
    jurisdiction_code: str
    load_date: date
    batch_id: str
    files: tuple[str, ...]  # URIs of its raw-zone Parquet files
    rows: int = 0
    committed_at: str | None = None  # ISO instant the load finished (manifest finished_at)
    # what a share's lineage records of the batch (sharing/lineage.py reads them from the warehouse's
    # raw.batches, not from the lake's manifests: a night's publication then reads only its own batches)
    rows_quarantined: int = 0
    quarantine_by_rule: tuple[tuple[str, int], ...] = ()
    raw_keys: tuple[str, ...] = ()  # lake keys of `files`


def committed_batches(lake: Store) -> list[RawBatch]:
    """Every feed and day's committed batch: exactly what the warehouse must hold."""
    return [
        RawBatch(
            feed=m.feed,
            entity=m.entity,
            jurisdiction_code=m.jurisdiction_code,
            load_date=m.load_date,
            batch_id=m.batch_id,
            files=tuple(lake.uri(k) for k in m.files.raw),
            rows=m.rows_written,
            committed_at=m.finished_at,
            rows_quarantined=m.rows_quarantined,
            quarantine_by_rule=tuple(sorted(m.quarantine_by_rule.items())),
            raw_keys=tuple(m.files.raw),
        )
        for m in committed_manifest_records(lake)
    ]


def committed_files(lake: Store, entity: str | None = None, zone: str = "raw") -> dict[str, list[str]]:
    """URIs of committed Parquet files per entity: what dbt sources and sharing may read."""
    out: dict[str, list[str]] = {}
    for m in committed_manifest_records(lake):
        if entity and m.entity != entity:
            continue
        out.setdefault(m.entity, []).extend(lake.uri(k) for k in getattr(m.files, zone))
    return out


def collect_garbage(
    lake: Store,
    entity: str,
    jurisdiction: str,
    load_date: date,
    feed: str,
    keep: str | None,
    *,
    retention: timedelta = retention_mod.DEFAULT_RETENTION,
) -> int:
    """Clear the batch directories of this feed and day other than `keep`; returns the files deleted.

    Crashed, failed or blocked attempts were never committed, so no build reads them: they go at once. A
    batch that was committed and is now superseded may still be read by a running build: it is recorded
    and deleted by `retention.sweep` once no build can read it. The sweep also runs here, for the feed."""
    others: dict[str, list[str]] = {}
    for zone in ("raw", "quarantine"):
        prefix = partition_prefix(zone, entity, jurisdiction, load_date, feed)
        for b in {k[len(prefix) :].split("/", 1)[0] for k in lake.list(prefix)}:
            if b != f"batch={keep}":
                others.setdefault(b.removeprefix("batch="), []).append(prefix + b + "/")
    removed = 0
    for batch_id, prefixes in sorted(others.items()):
        record = attempt_record(lake, feed, batch_id)
        if record is not None and record.status == BatchStatus.COMMITTED:
            retention_mod.mark_superseded(lake, feed, batch_id, prefixes)
        else:
            removed += sum(lake.delete_prefix(p) for p in prefixes)
    return removed + retention_mod.sweep(lake, feed=feed, retention=retention)
