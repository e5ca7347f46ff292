"""What was loaded, when, how many rows, what was quarantined: read from the lake's batch records."""

from __future__ import annotations

from dataclasses import asdict

from pingan import raw_zone
from pingan.alerts import recent_alerts
from pingan.feed_spec import load_specs
from pingan.settings import Settings
from pingan.storage import Store

BATCH_FIELDS = ("load_date", "batch_id", "status", "rows_read", "rows_written", "rows_quarantined",
                "quarantine_by_rule", "started_at", "finished_at", "error")


def collect_status(settings: Settings, lake: Store) -> dict:
    """Per feed: its batches (every attempt) and which one is committed for each day."""
    specs = load_specs(settings.connectors_dir)
    committed = {(m["feed"], m["load_date"]): m["batch_id"] for m in raw_zone.committed_manifests(lake)}
    feeds: dict[str, dict] = {
        feed: {"entity": s.entity, "jurisdiction_code": s.jurisdiction_code, "batches": []}
        for feed, s in sorted(specs.items())
    }
    for rec in raw_zone.batch_records(lake):
        entry = feeds.setdefault(rec["feed"], {"entity": rec["entity"], "jurisdiction_code": rec["jurisdiction_code"],
                                               "batches": []})
        batch = {k: rec.get(k) for k in BATCH_FIELDS}
        batch["is_current"] = committed.get((rec["feed"], rec["load_date"])) == rec["batch_id"]
        if rec["status"] == "committed" and not batch["is_current"]:
            batch["status"] = "superseded"
        entry["batches"].append(batch)
    for entry in feeds.values():
        current = [b for b in entry["batches"] if b["is_current"]]
        entry["days_committed"] = len(current)
        entry["rows_written"] = sum(b["rows_written"] for b in current)
        entry["rows_quarantined"] = sum(b["rows_quarantined"] for b in current)
        entry["last_load_date"] = max((b["load_date"] for b in current), default=None)
        entry["blocked_days"] = sorted({b["load_date"] for b in entry["batches"] if b["status"] == "blocked"})
        # days whose latest attempt failed or found the source late, and that have no commit
        committed_days = {b["load_date"] for b in current}
        latest: dict[str, dict] = {}
        for b in entry["batches"]:
            latest[b["load_date"]] = b  # batches are in start order
        entry["problem_days"] = {d: {"status": b["status"], "error": b.get("error")} for d, b in sorted(latest.items())
                                 if b["status"] in ("failed", "late") and d not in committed_days}
    return {"lake": lake.url, "warehouse": str(settings.warehouse_path),
            "warehouse_exists": settings.warehouse_path.exists(), "feeds": feeds,
            "alerts": [asdict(a) for a in recent_alerts(lake)]}
