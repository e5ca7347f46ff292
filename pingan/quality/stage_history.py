"""Stage order across batches: a grid event's stage that arrives on a later day is checked against the
stages of that event already committed in the raw zone.

The suite's `event_stages_in_order` sees one batch only; an event discovered on Monday and closed on
Tuesday would escape it. Same rule name, same verdict: the row goes to quarantine as
`quality:event_stages_in_order`. One DuckDB query over the feed's committed files of the other days
within the rule's `meta.history_days` (90; the longest deadline is 15 days), so the check costs the same
after two years as after one month.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa

from pingan import raw_zone
from pingan.core.storage import Store
from pingan.quality.result import RowFailure
from pingan.quality.suites import load_suite, rules_of

ENTITY = "grid_event_stage"
RULE = "event_stages_in_order"
COLUMNS = "event_id,stage,stage_at"
DEFAULT_HISTORY_DAYS = 90


def stage_ranks(suites_dir: Path) -> dict[str, int]:
    """Lifecycle order of the stages, as the suite's own rule lists them."""
    stages = rules_of(load_suite(ENTITY, suites_dir))[RULE]["kwargs"]["stages"]
    return {s: i for i, s in enumerate(stages)}


def history_days(suites_dir: Path) -> int:
    """How many days either side of a delivery its events' committed stages are looked up (the rule's
    `meta.history_days`): an event's lifecycle is bounded by its deadline, so the night's cost is too."""
    return int(
        rules_of(load_suite(ENTITY, suites_dir))[RULE]["meta"].get("history_days", DEFAULT_HISTORY_DAYS)
    )


def history_files(lake: Store, feed: str, day: date, days: int = DEFAULT_HISTORY_DAYS) -> list[str]:
    """Committed raw files of this feed for the other days within `days` of `day` (a listing of the
    manifests' names, then only those days' manifests read)."""
    near = [d for d in raw_zone.committed_dates(lake, feed) if d != day and abs((d - day).days) <= days]
    manifests = (raw_zone.committed_manifest_record(lake, feed, d) for d in near)
    return [lake.uri(k) for m in manifests if m is not None for k in m.files.raw]


def stage_order_failures(
    lake: Store, feed: str, day: date, table: pa.Table, suites_dir: Path
) -> list[RowFailure]:
    """Rows of `table` whose stage time contradicts a committed stage of the same event on another day."""
    files = history_files(lake, feed, day, history_days(suites_dir))
    if not files or table.num_rows == 0:
        return []
    import duckdb

    ranks = stage_ranks(suites_dir)
    batch = pa.table(
        {
            "row_index": pa.array(range(table.num_rows), pa.int64()),
            "event_id": table["event_id"],
            "stage": table["stage"],
            "stage_at": table["stage_at"],
        }
    )
    rank = pa.table({"stage": list(ranks), "stage_rank": list(ranks.values())})
    # the history is read by pyarrow: the raw zone is encrypted (pingan/core/lake_crypto.py)
    history = lake.read_parquet([lake.key_of(f) for f in files], columns=["event_id", "stage", "stage_at"])
    con = duckdb.connect()
    try:
        con.register("history", history)
        con.register("batch", batch)
        con.register("rank", rank)
        rows = con.execute("""
            with b as (select batch.*, stage_rank from batch join rank using (stage)),
                 h as (select event_id, stage_at, stage_rank
                       from history join rank using (stage)
                       where event_id in (select event_id from b))
            select distinct b.row_index, b.event_id, b.stage, b.stage_at
            from b join h using (event_id)
            where (h.stage_rank < b.stage_rank and h.stage_at > b.stage_at)
               or (h.stage_rank > b.stage_rank and h.stage_at < b.stage_at)
            order by 1""").fetchall()
    finally:
        con.close()
    return [
        RowFailure(int(i), RULE, COLUMNS, json.dumps([e, s, t.isoformat()], ensure_ascii=False))
        for i, e, s, t in rows
    ]
