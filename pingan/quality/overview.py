"""Quality at a glance, per feed and day, from the lake's batch records (what `pingan quality` and
`pingan report` show): rows read, committed, quarantined by rule, warnings, and blocked days with cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pingan import raw_zone
from pingan.core.storage import Store
from pingan.quality.batch_rules import NOTHING_DELIVERED, nothing_delivered


@dataclass
class DayQuality:
    feed: str
    load_date: str
    status: str  # of the day's latest attempt: committed | blocked | failed | late | interrupted | running
    rows_read: int
    rows_committed: int  # rows of the day's committed batch (the previous one if the latest was blocked)
    rows_quarantined: int
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cause: str | None = None  # why the latest attempt did not commit
    committed_at: str | None = None


def day_quality(lake: Store, feed: str | None = None, since: date | None = None) -> list[DayQuality]:
    """One row per feed and load date, sorted; `since` keeps days on or after it."""
    committed = {(m["feed"], m["load_date"]): m for m in raw_zone.committed_manifests(lake, feed)}
    records = raw_zone.batch_records(lake, feed)
    latest: dict[tuple[str, str], dict] = {}
    for n, rec in enumerate(records):
        later = any(r["feed"] == rec["feed"] and r["load_date"] == rec["load_date"] for r in records[n + 1 :])
        latest[(rec["feed"], rec["load_date"])] = {**rec, "status": raw_zone.attempt_status(rec, later)}
    out = []
    for key in sorted(set(latest) | set(committed)):
        if since and key[1] < since.isoformat():
            continue
        rec = latest.get(key) or committed[key]
        good = committed.get(key)
        quality = rec.get("quality") or {}
        status, cause = rec["status"], rec.get("error")
        held = bool(good and good["rows_written"])
        if nothing_delivered(
            status, rec.get("rows_read", 0), quality.get("critical_failures") or [], held=held
        ):
            status, cause = "late", f"{NOTHING_DELIVERED} (0 rows read)"  # as for a missing file
        out.append(
            DayQuality(
                feed=key[0],
                load_date=key[1],
                status=status,
                rows_read=rec.get("rows_read", 0),
                rows_committed=good["rows_written"] if good else 0,
                rows_quarantined=rec.get("rows_quarantined", 0),
                quarantine_by_rule=dict(rec.get("quarantine_by_rule") or {}),
                warnings=sorted(quality.get("warnings") or {}),
                cause=cause if status != "committed" else _findings(quality),
                committed_at=good.get("finished_at") if good else None,
            )
        )
    return out


def _findings(quality: dict) -> str | None:
    """A committed day's profile warnings (a check the feed declares `warn`, or an accepted day)."""
    return "; ".join(quality.get("findings") or []) or None


def top_rules(quarantine_by_rule: dict[str, int], n: int = 3) -> str:
    """`rule n, rule n` for the n largest quarantine rules."""
    top = sorted(quarantine_by_rule.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{rule.removeprefix('quality:')} {count:,}" for rule, count in top)
