"""Load one feed for one logical date into the raw zone: extract, normalise, gate, write, commit.

Every record read ends in the raw zone or in quarantine with a reason; the manifest says how many of
each and the commit refuses if they do not add up. A batch whose quality gate reports a critical failure
is not committed: its rows go to quarantine and the day's previous commit (if any) stays the truth.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from pingan import __version__, raw_zone
from pingan.background_write import BackgroundWriter
from pingan.canonical import entity_schema, quarantine_schema
from pingan.feed_spec import FeedSpec
from pingan.normalise import BatchInfo, normalise, quarantine_rows
from pingan.prefetch import prefetch
from pingan.quality import results_store, stage_history
from pingan.quality.batch_rules import judge_batch
from pingan.settings import Settings
from pingan.storage import Store
from pingan.transports import ExtractContext, extract

log = logging.getLogger(__name__)
PART = "part-00000.parquet"
GATE_ROWS = 200_000  # rows gated per GX run: bounds memory while keeping GX runs few


@dataclass
class BatchResult:
    feed: str
    load_date: date
    batch_id: str
    status: str  # committed | blocked
    rows_read: int
    rows_written: int
    rows_quarantined: int
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    new_columns: list[str] = field(default_factory=list)
    critical_failures: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


class RerunRefused(RuntimeError):
    """Rerunning this day would drop source states that only the lake still holds."""


def _check_incremental_rerun(spec: FeedSpec, day: date, lake: Store) -> None:
    """A source updated in place (SQL table, API with `since`) is read from a cursor, not by day. Once a
    later day is committed, loading an earlier one would either drop states the source no longer holds
    (the day was committed) or read again rows the later day already holds (it was not)."""
    if not spec.incremental:
        return
    dates = raw_zone.committed_dates(lake, spec.feed)
    later = [d for d in dates if d > day]
    if not later:
        return
    if day in dates:
        why = "the source has moved on, so a rerun would drop the states that day read"
    else:
        why = f"{later[0]} already read this day's changes from the cursor, so loading it now would load them twice"
    raise RerunRefused(f"{spec.feed} {day}: later day {later[0]} is committed; {why}. Use --force to load it anyway.")


def new_batch_id(day: date) -> str:
    return f"{day:%Y%m%d}-{datetime.now(UTC):%H%M%S}-{secrets.token_hex(3)}"


def _fault_point(name: str) -> None:
    """Crash on purpose where PINGAN_FAULT says (used by tests to kill a load at a precise step)."""
    if os.environ.get("PINGAN_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _schema_fingerprint(schema: pa.Schema) -> str:
    return hashlib.sha256(schema.to_string(show_schema_metadata=False).encode()).hexdigest()[:16]


def _dedupe(good: pa.Table, seen: set[str], spec: FeedSpec, info: BatchInfo) -> tuple[pa.Table, pa.Table]:
    """A record delivered twice in one batch is loaded once (the first); repeats go to quarantine.

    `seen` holds the record ids of earlier chunks; the usual case (no repeat) costs two C-level set passes.
    """
    ids = good.column("record_id").to_pylist()
    chunk_ids = set(ids)
    if len(chunk_ids) == len(ids) and seen.isdisjoint(chunk_ids):
        seen |= chunk_ids
        return good, quarantine_schema().empty_table()
    # slow path, only for chunks holding a repeat: keep each id's first sighting in delivery order
    flags = []
    for rid in ids:
        flags.append(rid not in seen)
        seen.add(rid)
    keep = pa.array(flags)
    dup = good.filter(pc.invert(keep))
    n = dup.num_rows
    return good.filter(keep), _quarantine_canonical(dup, spec, info, rules=pa.array(["duplicate_record"] * n),
                                                    columns=pa.array(["record_id"] * n),
                                                    values=dup["record_id"].combine_chunks())


def _quarantine_canonical(rows: pa.Table, spec: FeedSpec, info: BatchInfo, *, rules, columns, values) -> pa.Table:
    """Canonical rows that must leave the batch, as quarantine records keeping their source file and row."""
    return quarantine_rows(spec, info, rows["source_file"].combine_chunks(),
                           source_record_id=rows["source_record_id"].combine_chunks(),
                           rows=rows["source_row"].combine_chunks(), rules=rules, columns=columns, values=values,
                           records=rows.to_pylist())


def ingest_feed(
    spec: FeedSpec,
    day: date,
    settings: Settings,
    lake: Store,
    *,
    gate: Callable | None = None,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> BatchResult:
    """Load `spec` for logical date `day`. `gate(spec, table) -> GateResult` validates the rows before writing."""
    if not force:
        _check_incremental_rerun(spec, day, lake)
    started = datetime.now(UTC)
    batch_id = new_batch_id(day)
    info = BatchInfo(batch_id, day, started)
    ctx = ExtractContext(spec, day, settings, cursor_before=raw_zone.cursor_before(lake, spec.feed, day))
    raw_key = raw_zone.batch_prefix("raw", spec.entity, spec.jurisdiction_code, day, spec.feed, batch_id) + PART
    q_key = raw_zone.batch_prefix("quarantine", spec.entity, spec.jurisdiction_code, day, spec.feed, batch_id) + PART
    schema = entity_schema(spec.entity)
    raw_zone.start_attempt(lake, feed=spec.feed, entity=spec.entity, jurisdiction=spec.jurisdiction_code,
                           load_date=day, batch_id=batch_id, started_at=started.isoformat())
    try:
        return _load(spec, day, settings, lake, gate, progress, info, ctx, raw_key, q_key, schema, started)
    except Exception:
        # the caller records the failure with its error; a record left "running" would mean a killed load
        raw_zone.drop_attempt(lake, spec.feed, batch_id)
        raise


def _load(spec: FeedSpec, day: date, settings: Settings, lake: Store, gate, progress, info: BatchInfo,
          ctx: ExtractContext, raw_key: str, q_key: str, schema: pa.Schema, started: datetime) -> BatchResult:
    batch_id = info.batch_id
    counts = Counter()
    by_rule: Counter[str] = Counter()
    new_columns: set[str] = set()
    critical: set[str] = set()
    warnings: Counter[str] = Counter()
    cursor_after = ctx.cursor_before
    cursor_source = spec.incremental.cursor_column if spec.incremental else None
    seen: set[str] = set()
    gate_rules: dict[str, dict] = {}
    gate_runs = 0

    buffered: list[pa.Table] = []

    def flush() -> None:
        """Gate the buffered rows in one GX run (a run costs about a second whatever its size), then write."""
        nonlocal gate_runs
        if not buffered:
            return
        good = pa.concat_tables(buffered)
        buffered.clear()
        if gate is not None and good.num_rows:
            verdict = gate(spec, good)
            critical.update(verdict.critical_failures)
            warnings.update(verdict.warnings)
            results_store.merge_gate_rules(gate_rules, verdict.rules)
            if verdict.gx_result is not None:
                results_store.store_validation(lake, spec.feed, batch_id, gate_runs, verdict.gx_result,
                                               {"feed": spec.feed, "load_date": day.isoformat(), "batch_id": batch_id})
            gate_runs += 1
            failures = list(verdict.row_failures)
            if spec.entity == stage_history.ENTITY:
                failures += stage_history.stage_order_failures(lake, spec.feed, day, good, settings.expectations_dir)
            if failures:
                good, gated = _split_row_failures(good, sorted(failures), spec, info)
                write_quarantine(gated)
        raw_out.write_table(good)
        counts["written"] += good.num_rows

    def write_quarantine(table: pa.Table) -> None:
        q_out.write_table(table)
        counts["quarantined"] += table.num_rows
        by_rule.update(table["rule"].to_pylist())

    with lake.parquet_writer(raw_key, schema) as raw_file, lake.parquet_writer(q_key, quarantine_schema()) as q_out:
        raw_out = BackgroundWriter(raw_file)  # compresses the previous part while this one is parsed
        try:
            for chunk in prefetch(extract(ctx)):
                if cursor_source and cursor_source in chunk.table.column_names and chunk.table.num_rows:
                    top = pc.max(chunk.table[cursor_source]).as_py()
                    cursor_after = max(filter(None, [cursor_after, top]), default=None)
                result = normalise(chunk, spec, info)
                good, duplicates = _dedupe(result.good, seen, spec, info)
                write_quarantine(pa.concat_tables([result.quarantine, duplicates]))
                buffered.append(good)
                counts["read"] += result.records_in
                new_columns.update(result.new_columns)
                if gate is None or sum(t.num_rows for t in buffered) >= GATE_ROWS:
                    flush()
                if progress:
                    progress(f"{spec.feed} {day}: {counts['read']:,} read, {counts['quarantined']:,} quarantined")
            flush()
        finally:
            raw_out.close()

    # the delivery as a whole: rows rejected at any stage against the feed's threshold, or nothing at all
    batch_failures = judge_batch(spec, counts["read"], counts["quarantined"], by_rule)
    critical.update(f.rule for f in batch_failures)
    status = "blocked" if critical else "committed"
    if status == "blocked":
        moved = _block(lake, raw_key, q_key, sorted(critical), spec, info)
        by_rule["batch_blocked"] += moved
        counts["quarantined"] += moved
        counts["written"] -= moved

    manifest = {
        "manifest_version": raw_zone.MANIFEST_VERSION,
        "feed": spec.feed,
        "entity": spec.entity,
        "jurisdiction_code": spec.jurisdiction_code,
        "load_date": day.isoformat(),
        "batch_id": batch_id,
        "status": status,
        "sources": ctx.sources,
        "rows_read": counts["read"],
        "rows_written": counts["written"],
        "rows_quarantined": counts["quarantined"],
        "quarantine_by_rule": dict(sorted(by_rule.items())),
        "files": {"raw": [raw_key] if status == "committed" else [], "quarantine": [q_key]},
        "schema_fingerprint": _schema_fingerprint(schema),
        "schema_drift": {"new_columns": sorted(new_columns)},
        "cursor_before": ctx.cursor_before,
        "cursor_after": cursor_after,
        "quality": {"critical_failures": sorted(critical), "warnings": dict(warnings),
                    "batch_failures": [{"rule": f.rule, "cause": f.cause} for f in batch_failures],
                    "gate_runs": gate_runs},
        "code_version": {"pingan": __version__, "spec_fingerprint": spec.fingerprint},
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    if status == "blocked":
        manifest["error"] = _blocked_cause(spec, sorted(critical), batch_failures, gate_rules)
    if new_columns:
        log.warning("%s %s: new source columns kept in extra_columns: %s", spec.feed, day, sorted(new_columns))
    if status == "committed":
        _fault_point("before_commit")
        raw_zone.commit(lake, manifest)
        raw_zone.collect_garbage(lake, spec.entity, spec.jurisdiction_code, day, spec.feed, keep=batch_id)
    else:
        raw_zone.write_batch_record(lake, manifest)
    results_store.store_results(lake, manifest, gate_rules, manifest["quality"]["batch_failures"])
    return BatchResult(spec.feed, day, batch_id, status, counts["read"], counts["written"], counts["quarantined"],
                       dict(by_rule), sorted(new_columns), sorted(critical), manifest)


def _blocked_cause(spec: FeedSpec, critical: list[str], batch_failures, gate_rules: dict[str, dict]) -> str:
    """One line: why the batch was blocked, and that the day's previous commit stays."""
    if batch_failures:
        return "; ".join(f"{f.rule}: {f.cause}" for f in batch_failures)
    parts = []
    for rule in critical:
        r = gate_rules.get(rule, {})
        n = r.get("unexpected_count")
        parts.append(f"{rule} ({n:,} of {r.get('element_count', 0):,} rows)" if n else rule)
    return f"{spec.feed}: quality gate rejected the batch: {', '.join(parts)}; the previous commit of the day stays"


def _split_row_failures(good: pa.Table, failures, spec: FeedSpec, info: BatchInfo) -> tuple[pa.Table, pa.Table]:
    """Rows a row-level expectation rejected leave the batch for quarantine, with the rule that caught them."""
    first: dict[int, tuple] = {}
    for idx, rule, column, value in failures:
        first.setdefault(int(idx), (rule, column, value))
    idx = sorted(first)
    mask = pc.is_in(pa.array(range(good.num_rows)), pa.array(idx))
    bad = good.take(pa.array(idx, pa.int64()))
    q = _quarantine_canonical(
        bad, spec, info, rules=pa.array([f"quality:{first[i][0]}" for i in idx]),
        columns=pa.array([first[i][1] for i in idx], pa.string()),
        values=pa.array([None if first[i][2] is None else str(first[i][2]) for i in idx], pa.string()),
    )
    return good.filter(pc.invert(mask)), q


def _block(lake: Store, raw_key: str, q_key: str, critical: list[str], spec: FeedSpec, info: BatchInfo) -> int:
    """A blocked batch is never visible: its rows move to quarantine, tagged with the failed expectations."""
    good = lake.read_parquet(raw_key)
    rule = "batch_blocked:" + ",".join(critical)
    moved = _quarantine_canonical(good, spec, info, rules=pa.array([rule] * good.num_rows),
                                  columns=pa.nulls(good.num_rows, pa.string()),
                                  values=pa.nulls(good.num_rows, pa.string()))
    existing = lake.read_parquet(q_key)
    lake.write_parquet(q_key, pa.concat_tables([existing, moved]))
    lake.delete(raw_key)
    return good.num_rows
