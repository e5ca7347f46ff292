"""The stored quality results as a warehouse table: `raw.quality_results`, read by fct_quality_results.

One row per batch and rule (see pingan.quality.results_store), with `is_current` saying whether the
batch is the day's committed one. Read through the Store, so it works the same on a local and an S3 lake.
"""

from __future__ import annotations

import json

import pyarrow as pa

from pingan import raw_zone
from pingan.core.storage import Store
from pingan.quality.results_store import PREFIX

TABLE = "raw.quality_results"
SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("entity", pa.string()),
        ("jurisdiction_code", pa.string()),
        ("load_date", pa.string()),
        ("batch_id", pa.string()),
        ("status", pa.string()),
        ("is_current", pa.bool_()),
        ("rows_read", pa.int64()),
        ("stage", pa.string()),
        ("rule", pa.string()),
        ("severity", pa.string()),
        ("outcome", pa.string()),
        ("rows_failed", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("cause", pa.string()),
    ]
)


def quality_results(lake: Store | None) -> pa.Table:
    """Every stored result row, in SCHEMA (none without a lake)."""
    if lake is None:
        return SCHEMA.empty_table()
    current = {(m.feed, m.batch_id) for m in raw_zone.committed_manifest_records(lake)}
    rows = []
    for key in lake.list(f"{PREFIX}/results/"):
        if key.endswith(".json"):
            for row in json.loads(lake.get_bytes(key) or b"[]"):
                rows.append({**row, "is_current": (row["feed"], row["batch_id"]) in current})
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def register_quality_results(con, lake: Store | None) -> int:
    """Create (or replace) raw.quality_results in `con` from the lake; returns its row count."""
    con.register("pingan_quality_results", quality_results(lake))
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * REPLACE (CAST(load_date AS DATE) AS load_date) "
        "FROM pingan_quality_results"
    )
    con.unregister("pingan_quality_results")
    return con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def quality_status_of_batches(lake: Store, batch_ids: list[str]) -> dict[str, dict]:
    """Per batch id: its status, rows read / written / quarantined, quarantine per rule and blocking cause.

    Any attempt's record, committed or not (share manifests quote only committed batches, through
    pingan.sharing.lineage.SourceBatches); unknown ids map to {"status": "unknown"}.
    """
    wanted = set(batch_ids)
    out: dict[str, dict] = {b: {"status": "unknown"} for b in wanted}
    for rec in raw_zone.attempt_records(lake):
        if rec.batch_id in wanted:
            out[rec.batch_id] = {
                "feed": rec.feed,
                "load_date": rec.load_date.isoformat(),
                "status": rec.status.value,
                "rows_read": rec.rows_read,
                "rows_written": rec.rows_written,
                "rows_quarantined": rec.rows_quarantined,
                "quarantine_by_rule": dict(rec.quarantine_by_rule),
                "warnings": dict(rec.quality.warnings),
                "critical_failures": list(rec.quality.critical_failures),
                "cause": rec.error,
            }
    return out
