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


def quality_results(
    lake: Store | None,
    *,
    skip: frozenset[tuple[str, str]] = frozenset(),
    current: set[tuple[str, str]] | None = None,
) -> pa.Table:
    """Every stored result row, in SCHEMA (none without a lake), but those of the (feed, batch_id) in `skip`
    (already held by the caller: a batch's results file is written once, when the batch is loaded).
    `current`: the committed (feed, batch_id) pairs, when the caller knows them (else the lake's manifests)."""
    if lake is None:
        return SCHEMA.empty_table()
    if current is None:
        current = {(m.feed, m.batch_id) for m in raw_zone.committed_manifest_records(lake)}
    rows = []
    for key in lake.list(f"{PREFIX}/results/"):
        feed, _, name = key.removeprefix(f"{PREFIX}/results/").rpartition("/")
        if key.endswith(".json") and (feed, name.removesuffix(".json")) not in skip:
            for row in json.loads(lake.get_bytes(key) or b"[]"):
                rows.append({**row, "is_current": (row["feed"], row["batch_id"]) in current})
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def register_quality_results(con, lake: Store | None) -> int:
    """Bring raw.quality_results in `con` up to the lake; returns its row count.

    Incremental: the results of batches the table already holds are not read again, so a nightly build
    reads the night's files, not every stored one. `is_current` is set again on every row from
    raw.batches (the build's committed batches) when registered, since a rerun makes an earlier batch of
    its day no longer current."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    current = None
    if _exists(con, "batches"):
        current = set(con.execute("SELECT source_feed, batch_id FROM raw.batches").fetchall())
    held: frozenset[tuple[str, str]] = frozenset()
    if _exists(con, "quality_results"):
        held = frozenset(con.execute(f"SELECT DISTINCT feed, batch_id FROM {TABLE}").fetchall())
    con.register("pingan_quality_results", quality_results(lake, skip=held, current=current))
    columns = "SELECT * REPLACE (CAST(load_date AS DATE) AS load_date) FROM pingan_quality_results"
    con.execute(f"INSERT INTO {TABLE} {columns}" if held else f"CREATE OR REPLACE TABLE {TABLE} AS {columns}")
    con.unregister("pingan_quality_results")
    if held and current is not None:
        committed = (
            "EXISTS (SELECT 1 FROM raw.batches AS b WHERE b.source_feed = q.feed AND b.batch_id = q.batch_id)"
        )
        con.execute(
            f"UPDATE {TABLE} AS q SET is_current = {committed} WHERE is_current IS DISTINCT FROM {committed}"
        )
    return con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def _exists(con, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = ?",
            [table],
        ).fetchone()[0]
    )


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
