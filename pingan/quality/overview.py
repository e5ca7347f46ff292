"""Quality at a glance, per feed and day, from the lake's batch records (what `pingan quality` and
`pingan report` show): rows read, committed, quarantined by rule, warnings, and blocked days with cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pingan import raw_zone
from pingan.core.status import BatchStatus
from pingan.core.storage import Store
from pingan.quality.batch_rules import NOTHING_DELIVERED, nothing_delivered
from pingan.raw_zone.manifest import Manifest


@dataclass
class DayQuality:
    feed: str
    load_date: str
    status: BatchStatus  # of the day's latest attempt: committed | blocked | failed | late | interrupted | running
    rows_read: int
    rows_committed: int  # rows of the day's committed batch (the previous one if the latest was blocked)
    rows_quarantined: int
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cause: str | None = None  # why the latest attempt did not commit
    committed_at: str | None = None


def day_quality(lake: Store, feed: str | None = None, since: date | None = None) -> list[DayQuality]:
    """One row per feed and load date, sorted; `since` keeps days on or after it."""
    committed = {(m.feed, m.load_date): m for m in raw_zone.committed_manifest_records(lake, feed)}
    latest = latest_attempts(raw_zone.attempt_records(lake, feed))
    return [
        _day_row(latest.get(key) or (committed[key], committed[key].status), committed.get(key))
        for key in sorted(set(latest) | set(committed))
        if not since or key[1] >= since
    ]


def latest_attempts(records: list[Manifest]) -> dict[tuple[str, date], tuple[Manifest, BatchStatus]]:
    """Per feed and day, its latest attempt (records are in start order) with the status to show."""
    latest: dict[tuple[str, date], tuple[Manifest, BatchStatus]] = {}
    for n, rec in enumerate(records):
        later = any(r.feed == rec.feed and r.load_date == rec.load_date for r in records[n + 1 :])
        latest[(rec.feed, rec.load_date)] = (rec, raw_zone.attempt_status(rec, later))
    return latest


def _day_row(attempt: tuple[Manifest, BatchStatus], good: Manifest | None) -> DayQuality:
    rec, status = attempt
    cause = rec.error
    held = bool(good and good.rows_written)
    if nothing_delivered(status, rec.rows_read, rec.quality.critical_failures, held=held):
        status, cause = BatchStatus.LATE, f"{NOTHING_DELIVERED} (0 rows read)"  # as for a missing file
    return DayQuality(
        feed=rec.feed,
        load_date=rec.load_date.isoformat(),
        status=status,
        rows_read=rec.rows_read,
        rows_committed=good.rows_written if good else 0,
        rows_quarantined=rec.rows_quarantined,
        quarantine_by_rule=dict(rec.quarantine_by_rule),
        warnings=sorted(rec.quality.warnings),
        cause=cause if status != BatchStatus.COMMITTED else _findings(rec),
        committed_at=good.finished_at if good else None,
    )


def _findings(rec: Manifest) -> str | None:
    """A committed day's profile warnings (a check the feed declares `warn`, or an accepted day)."""
    return "; ".join(rec.quality.findings) or None


def top_rules(quarantine_by_rule: dict[str, int], n: int = 3) -> str:
    """`rule n, rule n` for the n largest quarantine rules."""
    top = sorted(quarantine_by_rule.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{rule.removeprefix('quality:')} {count:,}" for rule, count in top)
