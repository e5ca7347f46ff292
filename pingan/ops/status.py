"""What was loaded, when, how many rows, what was quarantined: read from the lake's batch records (typed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pingan import raw_zone
from pingan.core.feed_spec import BrokenSpec, load_spec_set
from pingan.core.settings import Settings
from pingan.core.status import PROBLEM_STATUSES, BatchStatus
from pingan.core.storage import Store, share_store
from pingan.ops.alerts import Alert, recent_alerts
from pingan.quality.batch_rules import NOTHING_DELIVERED, nothing_delivered
from pingan.raw_zone.manifest import Manifest


@dataclass(frozen=True)
class BatchRow:
    """One load attempt as `pingan status` shows it."""

    load_date: str
    batch_id: str
    status: BatchStatus  # as shown: `interrupted` and `superseded` are derived here
    rows_read: int
    rows_written: int
    rows_quarantined: int
    quarantine_by_rule: dict[str, int]
    started_at: str | None
    finished_at: str | None
    error: str | None
    critical_failures: list[str]
    is_current: bool  # the day's committed batch


@dataclass(frozen=True)
class DayProblem:
    """Why a day's latest attempt did not commit (a blocked or interrupted one left the previous commit)."""

    status: BatchStatus
    error: str | None


@dataclass
class FeedStatus:
    entity: str
    jurisdiction_code: str
    batches: list[BatchRow] = field(default_factory=list)  # every attempt, in start order
    days_committed: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    last_load_date: str | None = None
    blocked_days: list[str] = field(default_factory=list)
    problem_days: dict[str, DayProblem] = field(default_factory=dict)
    freshness: dict | None = None  # mart_feed_freshness of the last published build


@dataclass
class StatusReport:
    lake: str
    warehouse: str
    warehouse_exists: bool
    feeds: dict[str, FeedStatus]
    broken_specs: list[BrokenSpec]
    alerts: list[Alert]
    held_back_shares: list[HeldBackShare]

    def as_json(self) -> dict:
        """The report as `pingan status --json` prints it."""
        return asdict(self)


def collect_status(settings: Settings, lake: Store) -> dict:
    """Per feed: its batches (every attempt) and which one is committed for each day (as JSON)."""
    return status_report(settings, lake).as_json()


def status_report(settings: Settings, lake: Store) -> StatusReport:
    """Per feed: its batches (every attempt) and which one is committed for each day."""
    spec_set = load_spec_set(settings.connectors_dir)  # a broken file is reported, the others still listed
    feeds = {feed: FeedStatus(s.entity, s.jurisdiction_code) for feed, s in sorted(spec_set.specs.items())}
    committed = {(m.feed, m.load_date): m.batch_id for m in raw_zone.committed_manifest_records(lake)}
    records = raw_zone.attempt_records(lake)
    for n, rec in enumerate(records):
        later = any(r.feed == rec.feed and r.load_date == rec.load_date for r in records[n + 1 :])
        is_current = committed.get((rec.feed, rec.load_date)) == rec.batch_id
        entry = feeds.setdefault(rec.feed, FeedStatus(rec.entity, rec.jurisdiction_code))
        entry.batches.append(batch_row(rec, raw_zone.attempt_status(rec, superseded=later), is_current))
    freshness = warehouse_freshness(settings)
    for feed, entry in feeds.items():
        summarise_feed(entry)
        entry.freshness = freshness.get(feed)
    return StatusReport(
        lake=lake.url,
        warehouse=str(settings.warehouse_path),
        warehouse_exists=settings.warehouse_path.exists(),
        feeds=feeds,
        broken_specs=list(spec_set.broken),
        alerts=recent_alerts(lake),
        held_back_shares=held_back_shares(settings),
    )


def batch_row(rec: Manifest, status: BatchStatus, is_current: bool) -> BatchRow:
    if status == BatchStatus.COMMITTED and not is_current:
        status = BatchStatus.SUPERSEDED
    return BatchRow(
        load_date=rec.load_date.isoformat(),
        batch_id=rec.batch_id,
        status=status,
        rows_read=rec.rows_read,
        rows_written=rec.rows_written,
        rows_quarantined=rec.rows_quarantined,
        quarantine_by_rule=dict(rec.quarantine_by_rule),
        started_at=rec.started_at,
        finished_at=rec.finished_at,
        error=rec.error,
        critical_failures=list(rec.quality.critical_failures),
        is_current=is_current,
    )


def summarise_feed(entry: FeedStatus) -> None:
    """Fill a feed's totals, blocked days and problem days from its batches."""
    current = [b for b in entry.batches if b.is_current]
    entry.days_committed = len(current)
    entry.rows_written = sum(b.rows_written for b in current)
    entry.rows_quarantined = sum(b.rows_quarantined for b in current)
    entry.last_load_date = max((b.load_date for b in current), default=None)
    held = {b.load_date for b in current if b.rows_written}
    entry.blocked_days = sorted(
        {
            b.load_date
            for b in entry.batches
            if _problem(b, held=b.load_date in held).status == BatchStatus.BLOCKED
        }
    )
    latest = {b.load_date: b for b in entry.batches}  # batches are in start order
    entry.problem_days = {
        d: _problem(b, held=d in held) for d, b in sorted(latest.items()) if b.status in PROBLEM_STATUSES
    }


def _problem(batch: BatchRow, *, held: bool) -> DayProblem:
    """A day's problem in one vocabulary across transports: a source that gave nothing (no file, or no
    rows from an API or a table) is `late`, however the attempt was recorded."""
    if nothing_delivered(batch.status, batch.rows_read, batch.critical_failures, held=held):
        return DayProblem(BatchStatus.LATE, f"{NOTHING_DELIVERED} (0 rows read)")
    return DayProblem(batch.status, batch.error)


def warehouse_freshness(settings: Settings) -> dict[str, dict]:
    """Per feed, the freshness the last published build recorded (mart_feed_freshness); empty before a build."""
    if not settings.warehouse_path.exists():
        return {}
    import duckdb

    try:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            cur = con.execute(
                "select source_feed, cast(latest_load_date as varchar) as latest_load_date, "
                "cast(build_date as varchar) as build_date, lag_days, "
                "max_lag_days, is_stale from mart_feed_freshness"
            )
            names = [d[0] for d in cur.description]
            return {row[0]: dict(zip(names[1:], row[1:], strict=True)) for row in cur.fetchall()}
    except duckdb.Error:  # an older warehouse without the mart, or a file being replaced
        return {}


@dataclass(frozen=True)
class ReferenceOrphans:
    """Fact rows naming a key their reference does not hold, as the last published build counted them."""

    fact_table: str
    reference_table: str
    key_column: str
    orphan_rows: int
    orphan_keys: int

    def describe(self) -> str:
        return (
            f"{self.fact_table}.{self.key_column} names {self.orphan_keys:,} key(s) absent from "
            f"{self.reference_table} ({self.orphan_rows:,} rows, kept; orphan rule in the model docs)"
        )


def reference_orphans(settings: Settings) -> list[ReferenceOrphans]:
    """mart_reference_orphans of the published warehouse (empty before a build or without the mart)."""
    if not settings.warehouse_path.exists():
        return []
    import duckdb

    try:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            rows = con.execute(
                "select fact_table, reference_table, key_column, orphan_rows, orphan_keys "
                "from mart_reference_orphans where orphan_rows > 0 order by fact_table"
            ).fetchall()
    except duckdb.Error:  # an older warehouse without the mart, or a file being replaced
        return []
    return [ReferenceOrphans(*row) for row in rows]


@dataclass(frozen=True)
class HeldBackShare:
    """A partner dataset whose latest publication the PII guard held back (its previous snapshot stays)."""

    partner: str
    dataset: str
    as_of: str
    column: str
    rule: str
    rows: int
    keys: list[str]  # the share's own row keys, never the values

    def describe(self) -> str:
        keys = f"; rows {', '.join(self.keys)}" if self.keys else ""
        return (
            f"{self.partner}/{self.dataset} held back as of {self.as_of}: column {self.column}, rule {self.rule} "
            f"({self.rows} rows{keys}); its previous snapshot stays"
        )


def held_back_shares(settings: Settings) -> list[HeldBackShare]:
    """Datasets whose latest audit entry is a PII-guard block rather than a publication."""
    from pingan.core import audit

    shares = share_store(settings)
    if not shares.list(audit.PREFIX):
        return []
    latest: dict[tuple[str, str], list[dict]] = {}
    for e in audit.entries(shares):
        key = (e.get("partner"), e.get("dataset"))
        if e["event"] == "published":
            latest[key] = []
        elif e["event"] == "pii_guard_blocked":
            if latest.get(key) and latest[key][0]["detail"].get("as_of") != e["detail"].get("as_of"):
                latest[key] = []  # a later night's block replaces an earlier night's
            latest.setdefault(key, []).append(e)
    return [
        HeldBackShare(
            p,
            d,
            str(e["detail"].get("as_of")),
            e["detail"]["column"],
            e["detail"]["rule"],
            e["detail"]["rows"],
            list(e["detail"].get("keys") or []),
        )  # fmt: skip
        for (p, d), blocks in sorted(latest.items())
        for e in blocks
    ]
