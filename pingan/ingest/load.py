"""Load one feed for one logical date into the raw zone, as a straight line of stages.

    extract (SourceChunk) → normalise (Normalised) → event window → dedupe → gate (GatedBlock)
      → write (RowCounts) → resolve repeats → profile → judge the delivery (Verdict)
      → manifest (Manifest) → commit and learn the profile, or record the blocked attempt

Every record read ends in the raw zone or in quarantine with a reason; the manifest says how many of
each and the commit refuses if they do not add up. A batch whose quality gate reports a critical failure
is not committed: its rows go to quarantine and the day's previous commit (if any) stays the truth. So
is a batch that parses but does not look like its feed (ingest.profile_stage): cut short, ten times too
big, yesterday's file again, a column gone, its clock shifted.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from pingan import __version__, raw_zone
from pingan.core.canonical import entity_schema
from pingan.core.feed_spec import FeedSpec
from pingan.core.settings import Settings
from pingan.core.status import BatchStatus
from pingan.core.storage import Store
from pingan.ingest.chunk import SourceChunk
from pingan.ingest.dedupe import Deduper, resolve_repeats
from pingan.ingest.event_window import EventWindow
from pingan.ingest.gate_stage import GatedBlock, GateOutcome, GateStage
from pingan.ingest.normalise import BatchInfo, normalise
from pingan.ingest.prefetch import prefetch
from pingan.ingest.profile_stage import ProfiledBatch, learn, missing_columns, profile_batch
from pingan.ingest.transports import ExtractContext, extract
from pingan.ingest.writer import BatchWriter, RowCounts, append_quarantine, block_batch, open_batch_writer
from pingan.quality import results_store
from pingan.quality.batch_rules import BatchFailure as RuleFailure
from pingan.quality.batch_rules import judge_batch
from pingan.raw_zone.manifest import (
    BatchFailure,
    BatchFiles,
    CodeVersion,
    Manifest,
    QualitySummary,
    SchemaDrift,
)

log = logging.getLogger(__name__)
PART = "part-00000.parquet"


@dataclass(frozen=True)
class BatchResult:
    """What a load hands back: its manifest (the record written to the lake), with the counts at hand."""

    record: Manifest

    @property
    def manifest(self) -> Manifest:
        return self.record

    @property
    def feed(self) -> str:
        return self.record.feed

    @property
    def load_date(self) -> date:
        return self.record.load_date

    @property
    def batch_id(self) -> str:
        return self.record.batch_id

    @property
    def status(self) -> BatchStatus:  # committed | blocked
        return self.record.status

    @property
    def rows_read(self) -> int:
        return self.record.rows_read

    @property
    def rows_written(self) -> int:
        return self.record.rows_written

    @property
    def rows_quarantined(self) -> int:
        return self.record.rows_quarantined

    @property
    def quarantine_by_rule(self) -> dict[str, int]:
        return self.record.quarantine_by_rule

    @property
    def new_columns(self) -> list[str]:
        return self.record.schema_drift.new_columns

    @property
    def critical_failures(self) -> list[str]:
        return self.record.quality.critical_failures


class RerunRefused(RuntimeError):
    """Rerunning this day would drop source states that only the lake still holds."""


@dataclass(frozen=True)
class Attempt:
    """One load of a feed and day: its batch id, when it started and where its two files go."""

    spec: FeedSpec
    info: BatchInfo
    raw_key: str
    quarantine_key: str

    @classmethod
    def begin(cls, spec: FeedSpec, day: date) -> Attempt:
        batch_id = new_batch_id(day)
        info = BatchInfo(batch_id, day, datetime.now(UTC))

        def key(zone: str) -> str:
            return (
                raw_zone.batch_prefix(zone, spec.entity, spec.jurisdiction_code, day, spec.feed, batch_id)
                + PART
            )

        return cls(spec, info, key("raw"), key("quarantine"))

    @property
    def batch_id(self) -> str:
        return self.info.batch_id

    @property
    def day(self) -> date:
        return self.info.load_date


@dataclass
class Streamed:
    """What the streaming stages (extract → normalise → dedupe → gate → write) leave for the commit."""

    counts: RowCounts
    gate: GateOutcome
    new_columns: set[str] = field(default_factory=set)
    cursor_after: str | None = None
    source_columns: set[str] = field(default_factory=set)  # columns the delivery had, over all its files


@dataclass(frozen=True)
class Verdict:
    """Committed or blocked, and why."""

    status: BatchStatus  # committed | blocked
    critical: list[str]
    batch_failures: list  # quality.batch_rules failures on the delivery as a whole
    error: str | None = None
    profile: ProfiledBatch | None = None  # the day's profile and what the profile checks said


def new_batch_id(day: date) -> str:
    return f"{day:%Y%m%d}-{datetime.now(UTC):%H%M%S}-{secrets.token_hex(3)}"


def ingest_feed(
    spec: FeedSpec,
    day: date,
    settings: Settings,
    lake: Store,
    *,
    gate: Callable | None = None,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
    before_commit: Callable[[dict], None] | None = None,
) -> BatchResult:
    """Load `spec` for logical date `day`. `gate(spec, table) -> GateResult` validates the rows before writing.

    `before_commit(manifest)` runs between writing the batch's files and committing it (a test's hook, e.g.
    a SIGKILL there must leave nothing visible)."""
    if not force:
        check_incremental_rerun(spec, day, lake)
    attempt = Attempt.begin(spec, day)
    ctx = ExtractContext(spec, day, settings, cursor_before=raw_zone.cursor_before(lake, spec.feed, day))
    raw_zone.start_attempt(
        lake,
        feed=spec.feed,
        entity=spec.entity,
        jurisdiction=spec.jurisdiction_code,
        load_date=day,
        batch_id=attempt.batch_id,
        started_at=attempt.info.ingested_at.isoformat(),
    )
    try:
        streamed = stream_batch(
            attempt, ctx, lake, GateStage(gate, spec, attempt.info, lake, settings), progress
        )
        verdict = judge(attempt, ctx, streamed, lake)
        manifest = build_manifest(attempt, ctx, streamed, verdict)
        finish(
            lake,
            attempt,
            manifest,
            streamed.gate,
            before_commit,
            verdict.profile,
            retention=settings.superseded_retention,
        )
        return BatchResult(manifest)
    except Exception:
        # the caller records the failure with its error; a record left "running" would mean a killed load
        raw_zone.drop_attempt(lake, spec.feed, attempt.batch_id)
        raise


def check_incremental_rerun(spec: FeedSpec, day: date, lake: Store) -> None:
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
    raise RerunRefused(
        f"{spec.feed} {day}: later day {later[0]} is committed; {why}. Use --force to load it anyway."
    )


def stream_batch(
    attempt: Attempt,
    ctx: ExtractContext,
    lake: Store,
    gate: GateStage,
    progress: Callable[[str], None] | None,
) -> Streamed:
    """Extract, normalise, dedupe, gate and write chunk by chunk (the next chunk is read while this one is
    processed); quarantine records are written as soon as a stage produces them."""
    spec, day = attempt.spec, attempt.day
    cursor_column = spec.incremental.cursor_column if spec.incremental else None
    cursor, new_columns, source_columns = ctx.cursor_before, set(), set()
    dedupe = Deduper(spec, attempt.info)
    window = EventWindow(spec, attempt.info)
    with open_batch_writer(lake, attempt.raw_key, attempt.quarantine_key, entity_schema(spec.entity)) as out:
        for chunk in prefetch(extract(ctx)):
            cursor = advance_cursor(cursor, chunk, cursor_column, spec)
            source_columns.update(chunk.table.column_names)
            result = normalise(chunk, spec, attempt.info)
            inside, outside = window.split(result.good)
            good = dedupe.split(inside)
            out.write_quarantine(pa.concat_tables([result.quarantine, outside]))
            out.counts.read += result.records_in
            new_columns.update(result.new_columns)
            write_gated(out, gate.push(good))
            if progress:
                progress(
                    f"{spec.feed} {day}: {out.counts.read:,} read, {out.counts.quarantined:,} quarantined"
                )
        write_gated(out, gate.flush())
    resolved = resolve_repeats(lake, attempt.raw_key, dedupe, spec, attempt.info)
    append_quarantine(lake, attempt.quarantine_key, resolved.quarantine, out.counts)
    return Streamed(out.counts, gate.outcome, new_columns, cursor, source_columns)


class MissingCursorColumn(ValueError):
    """An incremental feed's delivery lacks the column its cursor is read from."""


def advance_cursor(
    cursor: str | None, chunk: SourceChunk, column: str | None, spec: FeedSpec | None = None
) -> str | None:
    """An incremental feed's window ends at the largest cursor value read."""
    if not column or not chunk.table.num_rows:
        return cursor
    if column not in chunk.table.column_names:
        if not chunk.table.column_names:  # every row of the chunk was a reader reject
            return cursor
        feed = spec.feed if spec else "feed"
        raise MissingCursorColumn(
            f"{chunk.source_file}: {feed}: cursor column {column!r} (incremental.cursor_column) is missing; "
            f"columns present: {chunk.table.column_names}"
        )
    top = pc.max(chunk.table[column]).as_py()
    return max(filter(None, [cursor, top]), default=None)


def write_gated(out: BatchWriter, block: GatedBlock | None) -> None:
    """Rows the gate let through go to the raw file, the ones it rejected to quarantine."""
    if block is None:
        return
    if block.rejected is not None:
        out.write_quarantine(block.rejected)
    out.write_good(block.good)


def judge(attempt: Attempt, ctx: ExtractContext, streamed: Streamed, lake: Store) -> Verdict:
    """The delivery as a whole: rows rejected at any stage against the feed's threshold, nothing at all, or
    a delivery unlike its feed's profile. A critical failure blocks the batch: its written rows move to
    quarantine (and the counts with them)."""
    spec, counts = attempt.spec, streamed.counts
    profiled = profile_batch(
        lake,
        spec,
        attempt.day,
        attempt.batch_id,
        attempt.raw_key,
        rows_read=counts.read,
        sources=ctx.sources,
        source_columns=streamed.source_columns,
        new_columns=sorted(streamed.new_columns),
        first_pull=spec.incremental is not None and ctx.cursor_before is None,
    )
    batch_failures = judge_batch(spec, counts.read, counts.quarantined, counts.by_rule) + profiled.failures
    batch_failures += empty_over_good_day(spec, attempt.day, counts.read, lake)
    critical = sorted(streamed.gate.critical | {f.rule for f in batch_failures})
    if not critical:
        return Verdict(BatchStatus.COMMITTED, [], batch_failures, profile=profiled)
    moved = block_batch(lake, attempt.raw_key, attempt.quarantine_key, critical, spec, attempt.info)
    counts.by_rule["batch_blocked"] += moved
    counts.quarantined += moved
    counts.written -= moved
    return Verdict(
        BatchStatus.BLOCKED,
        critical,
        batch_failures,
        blocked_cause(spec, critical, batch_failures, streamed.gate.rules),
        profile=profiled,
    )


def empty_over_good_day(spec: FeedSpec, day: date, rows_read: int, lake: Store) -> list[RuleFailure]:
    """An empty delivery never replaces a day that holds rows, even for a feed whose empty days are normal."""
    if rows_read:
        return []
    committed = raw_zone.committed_manifest_record(lake, spec.feed, day)
    held = committed.rows_written if committed else 0
    if not held:
        return []
    return [RuleFailure("empty_batch", f"{spec.feed} {day}: an empty delivery over a day that holds {held:,} "
                                       "rows; the previous commit of the day stays")]  # fmt: skip


def blocked_cause(spec: FeedSpec, critical: list[str], batch_failures, gate_rules: dict[str, dict]) -> str:
    """One line: why the batch was blocked, and that the day's previous commit stays."""
    if batch_failures:
        causes = "; ".join(f"{f.rule}: {f.cause}" for f in batch_failures)
        stays = "; the previous commit of the day stays"
        return causes if causes.endswith(stays) else causes + stays
    parts = []
    for rule in critical:
        r = gate_rules.get(rule, {})
        n = r.get("unexpected_count")
        parts.append(f"{rule} ({n:,} of {r.get('element_count', 0):,} rows)" if n else rule)
    return f"{spec.feed}: quality gate rejected the batch: {', '.join(parts)}; the previous commit of the day stays"


def build_manifest(attempt: Attempt, ctx: ExtractContext, streamed: Streamed, verdict: Verdict) -> Manifest:
    spec, counts = attempt.spec, streamed.counts
    committed = verdict.status == BatchStatus.COMMITTED
    return Manifest(
        feed=spec.feed,
        entity=spec.entity,
        jurisdiction_code=spec.jurisdiction_code,
        load_date=attempt.day,
        batch_id=attempt.batch_id,
        status=verdict.status,
        error=verdict.error,
        sources=ctx.sources,
        rows_read=counts.read,
        rows_written=counts.written,
        rows_quarantined=counts.quarantined,
        quarantine_by_rule=dict(sorted(counts.by_rule.items())),
        files=BatchFiles(raw=[attempt.raw_key] if committed else [], quarantine=[attempt.quarantine_key]),
        schema_fingerprint=schema_fingerprint(entity_schema(spec.entity)),
        schema_drift=SchemaDrift(
            new_columns=sorted(streamed.new_columns),
            missing_columns=missing_columns(spec, streamed.source_columns),
        ),
        cursor_before=ctx.cursor_before,
        cursor_after=streamed.cursor_after,
        quality=QualitySummary(
            critical_failures=verdict.critical,
            warnings=dict(streamed.gate.warnings) | profile_warnings(verdict),
            batch_failures=[BatchFailure(rule=f.rule, cause=f.cause) for f in verdict.batch_failures],
            gate_runs=streamed.gate.runs,
            findings=[f.cause for f in verdict.profile.warnings] if verdict.profile else [],
        ),
        code_version=CodeVersion(pingan=__version__, spec_fingerprint=spec.fingerprint),
        started_at=attempt.info.ingested_at.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
    )


def profile_warnings(verdict: Verdict) -> dict[str, int]:
    return {f.rule: 1 for f in verdict.profile.warnings} if verdict.profile else {}


def finish(
    lake: Store,
    attempt: Attempt,
    manifest: Manifest,
    gate: GateOutcome,
    before_commit: Callable[[Manifest], None] | None = None,
    profiled: ProfiledBatch | None = None,
    retention: timedelta = raw_zone.retention_mod.DEFAULT_RETENTION,
) -> None:
    """Commit the batch (then clear the day's older batch files: superseded ones once no build can read
    them, raw_zone/retention.py), or record the blocked attempt; either way store the quality results."""
    spec = attempt.spec
    if manifest.schema_drift.new_columns:
        log.warning(
            "%s %s: new source columns kept in extra_columns: %s",
            spec.feed,
            attempt.day,
            manifest.schema_drift.new_columns,
        )
    if manifest.status == BatchStatus.COMMITTED:
        if before_commit is not None:
            before_commit(manifest)
        raw_zone.commit(lake, manifest)
        if profiled is not None:
            learn(lake, profiled)
        raw_zone.collect_garbage(
            lake,
            spec.entity,
            spec.jurisdiction_code,
            attempt.day,
            spec.feed,
            keep=attempt.batch_id,
            retention=retention,
        )
    else:
        raw_zone.write_batch_record(lake, manifest)
    warnings = [BatchFailure(rule=f.rule, cause=f.cause) for f in profiled.warnings] if profiled else []
    results_store.store_results(lake, manifest, gate.rules, manifest.quality.batch_failures, warnings)


def schema_fingerprint(schema: pa.Schema) -> str:
    return hashlib.sha256(schema.to_string(show_schema_metadata=False).encode()).hexdigest()[:16]
