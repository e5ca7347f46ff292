"""The nightly job as plain functions: ingest every feed for a day, build the warehouse, publish shares.

The CLI and the Airflow DAGs call these same functions; the deployment (pingan.core.settings) says where the
stores are and pingan.core.deployment supplies each feed's endpoint. A feed that fails or is late does not stop the
others; the day's result says which feeds loaded, which were blocked and which failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pingan import raw_zone
from pingan.core.deployment import feed_sources
from pingan.core.feed_spec import BrokenSpec, FeedSpec, load_spec_set
from pingan.core.settings import Settings
from pingan.core.status import BatchStatus
from pingan.core.storage import Store, lake_store
from pingan.ingest.load import BatchResult, ingest_feed, new_batch_id
from pingan.ops import lineage_events
from pingan.quality.batch_rules import NOTHING_DELIVERED, nothing_delivered

log = logging.getLogger(__name__)


@dataclass
class FeedOutcome:
    feed: str
    status: BatchStatus  # committed | blocked | late (nothing delivered for the day) | failed
    result: BatchResult | None = None
    error: str | None = None


@dataclass
class DayResult:
    day: date
    feeds: list[FeedOutcome] = field(default_factory=list)
    build: object | None = None
    shares: list = field(default_factory=list)

    @property
    def failed(self) -> list[FeedOutcome]:
        return [f for f in self.feeds if f.status in (BatchStatus.FAILED, BatchStatus.BLOCKED)]


def quality_gate(settings: Settings) -> Callable:
    """The Great Expectations gate, bound to this deployment's suites (GX is imported on first use)."""
    from pingan.quality.gate import validate_batch
    from pingan.quality.parameters import suite_parameters

    def gate(spec: FeedSpec, table):
        # the feed's code mapping tells the suite which source codes are known (unmapped = quality failure)
        params = suite_parameters(spec) or None
        return validate_batch(
            spec.entity,
            table,
            overrides=spec.quality_overrides,
            suites_dir=settings.expectations_dir,
            parameters=params,
        )

    return gate


def select_specs(settings: Settings, feeds: list[str] | None) -> list[FeedSpec]:
    return select_spec_set(settings, feeds)[0]


def select_spec_set(settings: Settings, feeds: list[str] | None) -> tuple[list[FeedSpec], list[BrokenSpec]]:
    """The selected feeds (default all) that load, and the selected ones whose file does not."""
    found = load_spec_set(settings.connectors_dir)
    specs, broken = found.specs, {b.feed: b for b in found.broken}
    if feeds:
        unknown = sorted(set(feeds) - set(specs) - set(broken))
        if unknown:
            raise KeyError(f"unknown feed(s) {unknown}; known: {', '.join(sorted({*specs, *broken}))}")
        return [specs[f] for f in feeds if f in specs], [broken[f] for f in feeds if f in broken]
    return list(specs.values()), list(broken.values())


def sources_for(settings: Settings, feeds: list[str] | None = None):
    """The selected feeds' endpoints for a block (pingan.core.deployment.feed_sources), for callers of ingest_feed."""
    return feed_sources(settings, select_specs(settings, feeds))


def ingest_day(
    settings: Settings,
    day: date,
    *,
    feeds: list[str] | None = None,
    gate: bool = True,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> list[FeedOutcome]:
    """Load the selected feeds (default all) for one day, each with the endpoint its deployment supplies."""
    lake = lake_store(settings)
    check = quality_gate(settings) if gate else None
    specs, broken = select_spec_set(settings, feeds)
    for b in broken:  # a file that does not load fails its own feed, naming file and key; the others run
        log.error("%s %s: feed spec does not load: %s", b.feed, day, b.error)
    failed = [
        FeedOutcome(b.feed, BatchStatus.FAILED, error=f"feed spec does not load: {b.error}") for b in broken
    ]
    with feed_sources(settings, specs):
        loaded = [_ingest_one(spec, day, settings, lake, check, progress, force) for spec in specs]
    return loaded + failed


def _ingest_one(
    spec: FeedSpec, day: date, settings: Settings, lake: Store, check, progress, force
) -> FeedOutcome:
    """One feed's load; a late or broken feed leaves a batch record and never stops the others."""
    from pingan.ingest.transports import SourceMissing

    started = datetime.now(UTC).isoformat()
    try:
        result = ingest_feed(spec, day, settings, lake, gate=check, progress=progress, force=force)
        if result.status == BatchStatus.COMMITTED:
            lineage_events.emit_load(settings, lake, result.manifest)
        committed = raw_zone.committed_manifest_record(lake, spec.feed, day)
        held = bool(committed and committed.rows_written)
        if nothing_delivered(result.status, result.rows_read, result.critical_failures, held=held):
            # an API or table answering with no rows is the same day as a file not there: late, not blocked
            return FeedOutcome(
                spec.feed, BatchStatus.LATE, result, error=f"{NOTHING_DELIVERED} (0 rows read)"
            )
        return FeedOutcome(spec.feed, result.status, result)
    except SourceMissing as exc:
        log.warning("%s", exc)
        outcome = FeedOutcome(spec.feed, BatchStatus.LATE, error=f"{NOTHING_DELIVERED} ({exc})")
    except Exception as exc:  # one broken feed must not stop the others
        log.error("%s %s: load failed: %s", spec.feed, day, exc)
        outcome = FeedOutcome(spec.feed, BatchStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    raw_zone.record_attempt_failure(
        lake,
        feed=spec.feed,
        entity=spec.entity,
        jurisdiction=spec.jurisdiction_code,
        load_date=day,
        batch_id=new_batch_id(day),
        status=outcome.status,
        error=outcome.error,
        started_at=started,
        finished_at=datetime.now(UTC).isoformat(),
    )
    return outcome


def build_warehouse(
    settings: Settings,
    *,
    full_refresh: bool = False,
    build_date: date | None = None,
    progress: Callable[[str], None] | None = None,
    before_dbt: Callable[[], None] | None = None,
):
    from pingan.warehouse.build import WarehouseError, build

    lake = lake_store(settings)
    batches = raw_zone.committed_batches(lake)
    if not batches:  # an empty warehouse published over nothing would read as "nothing happened"
        raise WarehouseError(
            f"the lake {lake.url} holds no committed batch: nothing to build "
            "(run `pingan ingest --date D` first; `pingan status` shows what is loaded)"
        )
    from pingan.raw_zone.retention import reading_batches
    from pingan.warehouse.restricted import build_restricted

    # one lease over the warehouse and the restricted store: a rerun meanwhile may supersede a batch, and
    # its files must outlive both readers, not only the warehouse build
    with reading_batches(lake, [b.batch_id for b in batches], retention=settings.superseded_retention):
        result = build(
            settings,
            batches,
            lake=lake,
            full_refresh=full_refresh,
            build_date=build_date,
            progress=progress,
            before_dbt=before_dbt,
        )
        lineage_events.emit_dbt_build(settings)
        # the restricted tier follows the warehouse (issue 18), from the batches the build read
        build_restricted(settings, batches, lake, as_of=build_date)
    _lake_retention(settings, lake, build_date or max(b.load_date for b in batches))
    return result


def _lake_retention(settings: Settings, lake, as_of: date) -> None:
    """The night's retention of raw personal data in the lake (pingan.ops.retention_lake), after the build
    released its lease; a build still reading the lake defers it to the next night."""
    from pingan.core.pseudonym import load_hub_key
    from pingan.ops.erasure_lake import ErasureBlocked
    from pingan.ops.retention_lake import apply_lake_retention
    from pingan.sharing.publish import share_store

    try:
        apply_lake_retention(lake, load_hub_key(settings), share_store(settings), as_of)
    except ErasureBlocked as blocked:
        log.warning("lake retention deferred: %s", blocked)


def publish_shares(settings: Settings, day: date, partners: list[str] | None = None, *, full: bool = False):
    """Publish as of the logical date `day`; refused (NothingToPublish) on an empty lake or for a day past
    the newest committed data. `full`: whole re-snapshots instead of the night's merge."""
    from pingan.sharing.publish import SharesHeldBack, publish, share_store

    lake = lake_store(settings)
    try:
        shares = publish(settings, lake, share_store(settings), partners=partners, as_of=day, full=full,
                         check_lake=True)  # fmt: skip
    except SharesHeldBack as held:  # the published ones still get their lineage; the night still fails
        _emit_share_lineage(settings, held.published)
        raise
    _emit_share_lineage(settings, shares)
    return shares


def _emit_share_lineage(settings: Settings, shares) -> None:
    for share in shares:
        if getattr(share, "created", False):
            lineage_events.emit_share(settings, share)


def run_day(
    settings: Settings,
    day: date,
    *,
    feeds: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DayResult:
    result = DayResult(day)
    result.feeds = ingest_day(settings, day, feeds=feeds, progress=progress)
    result.build = build_warehouse(settings, build_date=day, progress=progress)
    result.shares = publish_shares(settings, day)
    return result
