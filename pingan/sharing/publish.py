"""Publish partner shares from the published warehouse into the share store, as signed Delta snapshots.

The share store (`PINGAN_SHARE_URL`) is apart from the lake and the warehouse: partner credentials are
granted `share/<partner>/` in it and nothing else. A run, on the real date `today`:
1. agreements that ended (expired or revoked, on the real date, never the as-of date) get their `latest`
   pointers withdrawn and nothing new; snapshots published longer ago than the agreement's retention are
   removed. Each is audited;
2. for every agreement in force, each granted dataset is read from the warehouse (read-only), rows after
   `as_of` left out (only the rows changed since the last publication when its state holds,
   changes.py), columns treated as the agreement says (pseudonyms and record ids keyed per
   partnership, coarse places and times), then the PII guard runs, with the names found in the PII
   columns of the source batches (of the changed rows' batches on a night of changes). Every share is prepared and guarded before anything is written: a
   blocked run writes no share (the block is audited);
3. a new snapshot is a new version of the dataset's Delta table, then its manifest and signature, then
   the signed `latest` pointer (never moved back to an older as-of date). A rerun with the same content
   writes nothing, but re-verifies the published snapshot and stops with an error if it was tampered with.
The snapshot id is the as-of date plus a hash of the content, the grant and the pseudonym key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pingan.core import audit
from pingan.core.canonical import TZ, local_today
from pingan.core.feed_spec import FeedSpec, load_specs
from pingan.core.settings import Settings
from pingan.core.storage import Store, share_store  # noqa: F401 - share_store: callers' seam
from pingan.sharing import audit_head, changes, delta, incremental, source_chunks
from pingan.sharing import grant_reads as reads
from pingan.sharing import manifest as mf
from pingan.sharing.agreements import Agreement, DatasetGrant, load_agreements
from pingan.sharing.gazetteer import Gazetteer, load_gazetteer
from pingan.sharing.keys import (
    key_id,
    public_key_id,
    public_key_pem,
    report_generated,
    share_key,
    signing_key,
)
from pingan.sharing.lineage import SourceBatches
from pingan.sharing.pii_guard import Finding, PiiGuardError
from pingan.sharing.pii_guard import scan as pii_scan
from pingan.sharing.pseudonymise import coarsen_location, key_ids_column, pseudonymise_column, truncate_time
from pingan.sharing.redact import redact_table
from pingan.sharing.sources import unfilled_grants

log = logging.getLogger(__name__)

PUBLIC_KEY_FILE = "signing_key.pub.pem"


class ShareError(RuntimeError):
    """A share that cannot be built from its agreement (missing table or column, unknown partner)."""


class NothingToPublish(ShareError):
    """A run that would publish no real data: an empty lake, an as-of date past the newest committed data, or
    a granted dataset no feed fills. Nothing is written; the message says why."""


class ShareTamperedError(ShareError):
    """A published snapshot no longer matches its signed manifest."""


class SharesHeldBack(PiiGuardError):
    """The PII guard held some datasets back; every other share of the run was published."""

    def __init__(self, message: str, published: list[PublishedShare], held_back: list[tuple[str, str]]):
        super().__init__(message)
        self.published = published
        self.held_back = held_back  # (partner, dataset)


@dataclass(frozen=True)
class PublishedShare:
    partner: str
    dataset: str
    snapshot_id: str
    path: str  # URI of the dataset's Delta table
    rows: int
    created: bool  # False when a rerun found this snapshot already published
    delta_version: int | None = None
    write_mode: str = ""  # full | merge | unchanged (incremental.py); "" for a rerun that wrote nothing
    files_added: int = 0  # data files this snapshot added to the table: what a partner's pull downloads
    bytes_added: int = 0


@dataclass(frozen=True)
class _Prepared:
    agreement: Agreement
    dataset: str
    grant: DatasetGrant
    table: pa.Table  # the rows to write: every granted row, or (changes_only) the night's changed rows
    batch_ids: list[str]
    sources: source_chunks.SourcesPlan  # the batch_ids by load month: sources.json and its chunk files
    pseudonym_key_id: str
    findings: list[Finding]  # of the PII guard; any finding holds this dataset back
    redactions: dict[str, dict[str, int]]  # column -> mask kind -> spans masked in its free text
    state: pa.Table  # changes.STATE_SCHEMA rows of the share after this publication
    fingerprint: str
    changes_only: bool = False  # table holds the night's changed rows; deletes the keys of rows that go
    deletes: pa.Array | None = None
    rows_updated: int = 0  # of the changed rows, those that replace a published row
    match_from: tuple[str, str] | None = (
        None  # (column, SQL literal): published rows to match lie at or after
    )
    previous_state: changes.State | None = None
    source_hash_of: str = "columns"  # what the state's source hashes are of (grant_reads.source_hash_of)

    @property
    def rows(self) -> int:
        return self.state.num_rows


def publish(
    settings: Settings,
    lake: Store,
    shares: Store,
    *,
    partners: list[str] | None = None,
    as_of: date,
    agreements_dir: Path | None = None,
    today: date | None = None,
    full: bool = False,
    check_lake: bool = False,
) -> list[PublishedShare]:
    """full: overwrite every dataset's table with a full snapshot instead of merging the night's changes.
    check_lake: refuse (NothingToPublish) an empty lake or an as-of date past its newest commit (check_as_of)
    before anything is written."""
    today = today or local_today()
    agreements = load_agreements(agreements_dir or settings.agreements_dir)
    unknown = sorted(set(partners or []) - set(agreements))
    if unknown:
        raise ShareError(f"no agreement for partner(s) {unknown}; known: {', '.join(sorted(agreements))}")
    selected = [agreements[p] for p in sorted(partners or agreements)]
    in_force = [a for a in selected if a.is_in_force(today)]
    specs = load_specs(settings.connectors_dir)  # read once: parsing every feed's YAML costs ~1 s
    if check_lake:
        check_as_of(lake, as_of, feeds=specs)
    check_grants_filled(settings, in_force, specs)
    for agreement in selected:
        if agreement not in in_force:
            withdraw(shares, agreement, today, as_of)
        enforce_retention(shares, agreement, today)
    if not in_force:
        return []
    if not settings.warehouse_path.exists():
        raise ShareError(f"no published warehouse at {settings.warehouse_path}: run the build first")

    # Keys are generated only in the local deployment; prod must be given them (pingan.core.settings).
    secrets_dir, allow_generate = settings.home / "secrets", settings.generate_keys
    generated: list[str] = []  # key files made now (the embedded default), reported in one warning
    signer = signing_key(secrets_dir, allow_generate=allow_generate, generated=generated)
    trusted = {public_key_id(signer.public_key()): signer.public_key()}
    prepared = _prepare_all(settings, lake, shares, specs, in_force, as_of, generated, trusted, full)
    report_generated(secrets_dir, generated)
    held_back = [p for p in prepared if p.findings]
    _audit_held_back(shares, held_back, as_of)
    results = [_write(shares, p, as_of, today, signer, full) for p in prepared if not p.findings]
    # the log's head, signed, into every partner's share: what it holds now can no longer go unnoticed
    audit_head.publish_heads(shares, [a.partner for a in in_force], signer, settings.home)
    for agreement in in_force:  # at most a line per partner (`pingan publish` prints them)
        mine = [r for r in results if isinstance(r, PublishedShare) and r.partner == agreement.partner]
        new = [r for r in mine if r.created]
        log.debug("shares %s: %d dataset(s), %d new snapshot(s), %s rows", agreement.partner, len(mine), len(new),
                 f"{sum(r.rows for r in new):,}")  # fmt: skip
    tampered = [r for r in results if isinstance(r, str)]
    if tampered:
        raise ShareTamperedError("published snapshot(s) tampered with: " + "; ".join(tampered))
    if held_back:
        raise _held_back_error(held_back, results)
    return results


def check_grants_filled(
    settings: Settings, agreements: list[Agreement], specs: dict[str, FeedSpec] | None = None
) -> None:
    """Refuse agreements that grant a dataset no feed fills (it would publish a signed empty snapshot)."""
    specs = load_specs(settings.connectors_dir) if specs is None else specs
    unfilled = unfilled_grants({a.partner: a for a in agreements}, specs)
    if unfilled:
        raise NothingToPublish("; ".join(u.describe() for u in unfilled))


def newest_committed_date(lake: Store) -> date | None:
    """The newest logical (load) date any feed has committed in the lake; None for an empty lake."""
    from pingan import raw_zone

    return max((day for _, day in raw_zone.committed_days(lake)), default=None)  # key names: no reads


def check_as_of(lake: Store, as_of: date, feeds: Iterable[str] = ()) -> None:
    """The as-of date a run may publish: never past the newest committed data, never from an empty lake
    (a wall-clock date would otherwise stamp old data as current and block the right date later).
    feeds: the feeds to look for a commit of `as_of` itself first (the nightly case: a few reads, where
    listing every committed day grows with the history)."""
    from pingan import raw_zone

    if any(lake.exists(raw_zone.manifest_key(feed, as_of)) for feed in feeds):
        return
    newest = newest_committed_date(lake)
    if newest is None:
        raise NothingToPublish(f"the lake {lake.url} holds no committed batch: nothing to publish "
                               "(run `pingan ingest --date D` first; `pingan status` shows what is loaded)")  # fmt: skip
    if as_of > newest:
        raise NothingToPublish(
            f"as of {as_of} is after the newest committed data ({newest}): nothing published. Publish as of a "
            f"logical date that was loaded (`pingan publish --date {newest}`)"
        )


@dataclass(frozen=True)
class _Reading:
    """What every dataset of a run is prepared with."""

    con: duckdb.DuckDBPyConnection  # the published warehouse, read-only
    shares: Store
    trusted: dict  # the hub's signing keys: the previous manifest must verify to publish only changes
    as_of: date
    full: bool
    pii_columns: set[str]
    sources: SourceBatches
    places: Gazetteer


def _prepare_all(
    settings: Settings,
    lake: Store,
    shares: Store,
    specs: dict[str, FeedSpec],
    in_force: list[Agreement],
    as_of: date,
    generated: list[str],
    trusted: dict,
    full: bool,
) -> list[_Prepared]:
    """Every granted dataset of the agreements in force, read, treated, redacted and guarded: the whole
    granted history, or only the rows changed since the last publication (changes.py)."""
    secrets_dir, allow_generate = settings.home / "secrets", settings.generate_keys
    pii_columns = {c for spec in specs.values() for c in spec.pii_columns}
    places = load_gazetteer(settings.dbt_dir / "seeds", settings.connectors_dir)
    prepared: list[_Prepared] = []
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.execute(f"SET TimeZone = '{TZ}'")
        sources = SourceBatches(con, lake, specs)  # the warehouse's raw.batches: what its rows came from
        reading = _Reading(con, shares, trusted, as_of, full, pii_columns, sources, places)
        for agreement in in_force:
            key = share_key(
                agreement.partner, secrets_dir, allow_generate=allow_generate, generated=generated
            )
            for name, grant in agreement.datasets.items():
                prepared.append(_prepare(reading, agreement, name, grant, key))
    return prepared


def _held_back_error(held_back: list[_Prepared], published: list[PublishedShare]) -> SharesHeldBack:
    described = "; ".join(f.describe(p.agreement.partner, p.dataset) for p in held_back for f in p.findings)
    return SharesHeldBack(
        f"PII guard held back {len(held_back)} dataset(s), their previous snapshots stay; "
        f"the other {len(published)} published: {described}",
        published,
        [(p.agreement.partner, p.dataset) for p in held_back],
    )


def _audit_held_back(shares: Store, held_back: list[_Prepared], as_of: date) -> None:
    for p in held_back:
        for f in p.findings:
            audit.append(
                shares, "pii_guard_blocked", partner=p.agreement.partner, dataset=p.dataset,
                column=f.column, rule=f.rule, rows=f.rows, keys=list(f.keys), as_of=as_of,
            )  # fmt: skip


# --- ended agreements and retention ---------------------------------------------------------------------
def withdraw(shares: Store, agreement: Agreement, today: date, as_of: date) -> int:
    """Remove the `latest` pointers of an agreement that ended: the partner's view of current data stops."""
    removed = 0
    for dataset in agreement.datasets:
        prefix = mf.dataset_prefix(agreement.partner, dataset)
        if shares.exists(prefix + mf.LATEST):
            shares.delete(prefix + mf.LATEST)
            shares.delete(prefix + mf.LATEST_SIGNATURE)
            audit.append(
                shares, "withdrawn", partner=agreement.partner, dataset=dataset,
                reason=agreement.ended_why(today), today=today,
            )  # fmt: skip
            removed += 1
    log.warning("agreement %s v%d %s: nothing published", agreement.partner, agreement.version,
                agreement.ended_why(today))  # fmt: skip
    audit.append(shares, "skipped_ended", partner=agreement.partner, reason=agreement.ended_why(today),
                 as_of=as_of, today=today, agreement_version=agreement.version)  # fmt: skip
    return removed


COMPACT_EVERY_DAYS = 30  # at most one retention-driven full re-snapshot (compaction) a month per dataset


def enforce_retention(shares: Store, agreement: Agreement, today: date) -> list[str]:
    """Delete snapshots published more than `retention_days` before today (their files and manifests)."""
    cutoff = today - timedelta(days=agreement.retention_days)
    removed = []
    for dataset in agreement.datasets:
        prefix = mf.dataset_prefix(agreement.partner, dataset)
        manifests = _manifests(shares, prefix)
        expired = {sid: m for sid, m in manifests.items() if m.published_on < cutoff}
        if not expired:
            continue
        files = _listed_files(shares, prefix, manifests)
        if any(listed is None for listed in files.values()):
            # a kept snapshot's unreadable list could name any file, an expired one's its own: deleting
            # the snapshots now would leave their files named by nothing, past retention for good
            log.error("%s: a snapshot's files.json cannot be read: no snapshot removed (retention retries "
                      "each night; publish --full writes every list again)", shares.uri(prefix))  # fmt: skip
            continue
        kept_files = {f.path for sid in manifests if sid not in expired for f in files[sid]}
        latest = _current_pointer(shares, prefix)
        for sid, m in sorted(expired.items()):
            for f in files[sid]:
                if f.path not in kept_files:
                    shares.delete(prefix + f.path)
            shares.delete_prefix(prefix + mf.SNAPSHOTS + sid + "/")
            if latest and latest.snapshot_id == sid:
                shares.delete(prefix + mf.LATEST)
                shares.delete(prefix + mf.LATEST_SIGNATURE)
            audit.append(
                shares, "removed_retention", partner=agreement.partner, dataset=dataset, snapshot_id=sid,
                published_on=m.published_on, retention_days=agreement.retention_days, today=today,
                files=len(files[sid]),
            )  # fmt: skip
            removed.append(sid)
            log.warning("%s/%s: removed snapshot %s (past %d-day retention)", agreement.partner, dataset, sid,
                     agreement.retention_days)  # fmt: skip
        kept = [m for sid, m in manifests.items() if sid not in expired]
        source_chunks.collect_garbage(shares, prefix, [m.snapshot_id for m in kept])
        if compaction_due(kept, today, pointer_removed=bool(latest and latest.snapshot_id in expired)):
            incremental.ask_full_snapshot(shares, agreement.partner, dataset, "retention removed snapshots")
    return removed


def _listed_files(
    shares: Store, prefix: str, manifests: dict[str, mf.SnapshotManifest]
) -> dict[str, list[mf.ManifestFile] | None]:
    """Each snapshot's data files (None, logged, where its `files.json` is missing or altered)."""
    out: dict[str, list[mf.ManifestFile] | None] = {}
    for sid, m in manifests.items():
        try:
            out[sid] = mf.snapshot_files(shares.get_bytes, prefix + mf.SNAPSHOTS + sid + "/", m)
        except mf.ManifestError as exc:
            log.error("%s", exc)
            out[sid] = None
    return out


def compaction_due(kept: list[mf.SnapshotManifest], today: date, *, pointer_removed: bool) -> bool:
    """Whether retention's sweep asks the next publish for a full re-snapshot (compacting the nightly
    files): when the current snapshot itself expired, or no full write is younger than
    COMPACT_EVERY_DAYS. Once history passes the retention, one snapshot expires every night: a full
    re-snapshot each time would make every night cost the whole history."""
    fulls = [m.published_on for m in kept if (m.model_extra or {}).get("write", {}).get("mode") == "full"]
    return pointer_removed or not fulls or max(fulls) < today - timedelta(days=COMPACT_EVERY_DAYS)


def _manifests(shares: Store, dataset_prefix: str) -> dict[str, mf.SnapshotManifest]:
    """The dataset's published snapshot manifests by snapshot id."""
    out = {}
    base = dataset_prefix + mf.SNAPSHOTS
    for key in shares.list(base):
        if key.endswith("/" + mf.MANIFEST):
            out[key[len(base) :].split("/", 1)[0]] = mf.read_manifest(json.loads(shares.get_bytes(key)), key)
    return out


# --- building a share -----------------------------------------------------------------------------------
def _prepare(
    reading: _Reading, agreement: Agreement, name: str, grant: DatasetGrant, key: bytes
) -> _Prepared:
    """The share's rows treated, redacted and guarded: only the night's changed rows when the state of the
    last publication can be trusted, else the whole granted history."""
    label = f"partner {agreement.partner}, dataset {name} ({agreement.path})"
    try:
        types = reads.source_types(reading.con, grant)
        previous = _trusted_state(reading, agreement, name, grant, types)
        if previous is not None:
            share = _prepare_changes(reading, agreement, name, grant, key, types, previous)
            if share is not None:
                return share
        return _prepare_whole(reading, agreement, name, grant, key, types)
    except ValueError as exc:
        raise ShareError(f"{label}: {exc}") from None


def _prepare_whole(
    reading: _Reading, agreement: Agreement, name: str, grant: DatasetGrant, key: bytes, types: dict[str, str]
) -> _Prepared:
    source_key = reads.key_column(grant, types)
    table = reads.read_rows(reading.con, grant, types, reading.as_of, source_key)
    batch_ids = reads.granted_batch_ids(reading.con, grant, types, reading.as_of)
    share = _treated(reading, agreement, name, grant, key, table, batch_ids, batch_ids)
    return replace(share, source_hash_of=reads.source_hash_of(grant, types))


def _prepare_changes(
    reading: _Reading,
    agreement: Agreement,
    name: str,
    grant: DatasetGrant,
    key: bytes,
    types: dict[str, str],
    previous: changes.State,
) -> _Prepared | None:
    """Only the rows whose source changed since the last publication; None when the whole history must be
    prepared instead (a source key that repeats, a share whose columns changed)."""
    source_key = reads.key_column(grant, types)
    days_read = reads.DaysRead(reading.con, grant, types, reading.as_of, source_key)
    try:
        night = changes.diff(reading.con, days_read.scan, previous)
    finally:
        days_read.close()
    if night is None:
        return None
    table, night_batches = days_read.rows_of(night.changed)
    batch_ids = night.batch_ids if "batch_id" in types else []
    share = _treated(reading, agreement, name, grant, key, table, batch_ids, night_batches, previous)
    if share.fingerprint != previous.fingerprint:
        return None  # the published columns changed: a full re-snapshot follows (incremental.py)
    upserts, state, updated, match_from = _night_upserts(share, previous, night)
    deletes = key_ids_column(key, pa.chunked_array([pa.array(night.deleted, pa.string())])).combine_chunks()
    return replace(share, table=upserts, state=state, changes_only=True, deletes=deletes, rows_updated=updated,
                   match_from=match_from, source_hash_of=previous.source_hash_of)  # fmt: skip


def _trusted_state(
    reading: _Reading, agreement: Agreement, name: str, grant: DatasetGrant, types: dict[str, str]
) -> changes.State | None:
    """The state of the dataset's last publication, if the night may publish only changes against it: it
    names the snapshot and Delta version of the verified `latest` manifest, and no full re-snapshot is due."""
    partner = agreement.partner
    if reading.full or incremental.full_snapshot_asked(reading.shares, partner, name):
        return None
    if reads.key_column(grant, types) is None:
        return None  # aggregates (no key to address a row by): the whole table, it is small
    state = changes.read_state(reading.shares, partner, name)
    if state is None or state.source_hash_of != reads.source_hash_of(grant, types):
        return None  # none, or its source hashes are of another kind (the build's row_hash came or went)
    prefix = mf.dataset_prefix(partner, name)
    previous = incremental.previous_published(
        reading.shares, prefix, _hub_keys(reading.shares, partner, reading.trusted)
    )
    if previous is None or (previous.manifest.snapshot_id, previous.manifest.delta_version) != (
        state.snapshot_id, state.delta_version
    ):  # fmt: skip
        return None
    if (
        not delta.exists(reading.shares, prefix)
        or delta.open_table(reading.shares, prefix).version() != state.delta_version
    ):
        return None
    return state


def _treated(
    reading: _Reading,
    agreement: Agreement,
    name: str,
    grant: DatasetGrant,
    key: bytes,
    table: pa.Table,
    batch_ids: list[str],
    name_batches: list[str],
    previous: changes.State | None = None,
) -> _Prepared:
    """Treat, redact and guard the rows read (their source key and hash columns set aside for the state).
    name_batches: the batches whose person names redaction and the guard look for."""
    source = table.select([changes.SOURCE_KEY, changes.SOURCE_HASH, changes.SOURCE_DAY])
    table = table.drop_columns([changes.SOURCE_KEY, changes.SOURCE_HASH, changes.SOURCE_DAY])
    table = delta.for_delta(_treat(table, grant, key))
    protected = set(grant.columns_treated("pseudonymise")) | set(grant.columns_treated("key_per_partnership"))
    keyed = grant.columns_treated("key_per_partnership")
    names = reading.sources.person_names(name_batches)
    free_text = [c for c in table.column_names if c not in protected and c not in reading.pii_columns]
    redaction = redact_table(table, free_text, names, reading.places)
    findings = pii_scan(redaction.table, pii_columns=reading.pii_columns, pseudonymised=protected,
                        person_names=names, places=reading.places, key_column=grant.key or next(iter(keyed), None))  # fmt: skip
    state = pa.table(
        [source[changes.SOURCE_KEY].cast(pa.string()), source[changes.SOURCE_HASH].cast(pa.uint64()),
         changes.row_hashes(redaction.table), changes.published_times(redaction.table, grant.as_of_column),
         source[changes.SOURCE_DAY].cast(pa.int32())],
        schema=changes.STATE_SCHEMA,
    )  # fmt: skip
    fingerprint = incremental.share_fingerprint(
        agreement.text_sha256, grant.model_dump_json(), key_id(key), redaction.table.schema
    )
    sources = source_chunks.plan(
        batch_ids, reading.sources, _previous_chunks(reading, agreement.partner, name)
    )
    return _Prepared(agreement, name, grant, redaction.table, batch_ids, sources,
                     key_id(key), findings, redaction.counts, state, fingerprint, previous_state=previous)  # fmt: skip


def _previous_chunks(reading: _Reading, partner: str, name: str) -> list[dict]:
    """The source chunks of the dataset's current (verified) snapshot, which tonight's may reuse (none
    on --full: a full re-snapshot writes its chunks afresh)."""
    if reading.full:
        return []
    prefix = mf.dataset_prefix(partner, name)
    previous = incremental.previous_published(
        reading.shares, prefix, _hub_keys(reading.shares, partner, reading.trusted)
    )
    return source_chunks.previous_chunks(reading.shares, prefix, previous.manifest if previous else None)


def _night_upserts(
    share: _Prepared, previous: changes.State, night: changes.NightChanges
) -> tuple[pa.Table, pa.Table, int, tuple[str, str] | None]:
    """The changed rows whose published form differs (a source change the treatment hides, e.g. a time
    within the same hour, rewrites nothing), the share's state after the night, how many of the rows
    replace a published one, and the bound on the published rows the merge must match (_match_from).
    Only the night's rows and the state's rows of their keys are joined here: both are small."""
    con = changes.memory()
    con.register("night", share.state)
    con.register("published", night.published)
    same, held = con.sql(
        """SELECT list(n.source_key) FILTER (WHERE n.out_hash = p.out_hash), count(*) FILTER (WHERE n.out_hash <> p.out_hash)
           FROM night n JOIN published p ON n.source_key = p.source_key"""
    ).fetchone()
    matched = con.sql(
        """SELECT count(*), count(p.out_time), min(p.out_time) FROM published p LEFT JOIN night n USING (source_key)
           WHERE p.is_gone OR n.out_hash <> p.out_hash"""
    ).fetchone()
    keep = pc.invert(pc.is_in(share.state["source_key"], pa.array(same or [], pa.string())))
    next_state = changes.next_state(previous, share.state, night.deleted)
    return share.table.filter(keep), next_state, held, _match_from(share, *matched)


def _match_from(share: _Prepared, rows: int, timed: int, earliest: datetime | None) -> tuple[str, str] | None:
    """(column, SQL literal) such that every published row the night updates or deletes has column >=
    literal (from the state's out_time): the merge then scans only the files whose statistics reach it,
    not the whole history. None: no bound (the as-of column is not shared, or a row has no time)."""
    column = share.grant.as_of_column
    if column not in share.table.column_names or (rows and timed < rows):
        return None
    kind = share.table.schema.field(column).type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        return None
    if rows == 0:  # only new rows: no published row to match
        earliest = datetime(9999, 1, 1, tzinfo=UTC)
    bound = earliest.astimezone(UTC) - timedelta(days=1)  # a looser bound is still right
    if pa.types.is_date(kind):
        return column, f"'{bound:%Y-%m-%d}'"
    return column, f"'{bound:%Y-%m-%dT%H:%M:%S}{'Z' if kind.tz else ''}'"


def _treat(table: pa.Table, grant: DatasetGrant, key: bytes) -> pa.Table:
    def set_column(column: str, values: pa.ChunkedArray) -> None:
        nonlocal table
        table = table.set_column(table.schema.get_field_index(column), column, values)

    for column in grant.columns_treated("pseudonymise"):
        set_column(column, pseudonymise_column(key, table[column]))
    for column in grant.columns_treated("key_per_partnership"):
        set_column(column, key_ids_column(key, table[column]))
    try:
        for column in grant.columns_treated("coarsen_location"):
            set_column(column, coarsen_location(table[column]))
        for unit in ("hour", "day"):
            for column in grant.columns_treated(f"truncate_to_{unit}"):
                set_column(column, truncate_time(table[column], unit))
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    return table


# --- writing a snapshot ---------------------------------------------------------------------------------
def _write(
    shares: Store, share: _Prepared, as_of: date, today: date, signer, full: bool = False
) -> PublishedShare | str:
    """Publish one share: a new snapshot, or (same content) re-verify the published one. Returns the
    share, or a line naming the tampered snapshot."""
    snapshot_id = _snapshot_id(share, as_of, full)
    _ensure_public_key(shares, share.agreement.partner, signer.public_key())
    snapshot = mf.snapshot_prefix(share.agreement.partner, share.dataset, snapshot_id)
    if shares.exists(snapshot + mf.SIGNATURE):  # the signature is written last: present = complete
        return _republish(shares, share, snapshot_id, signer)
    return _write_new(shares, share, snapshot_id, as_of, today, signer, full)


def _snapshot_id(share: _Prepared, as_of: date, full: bool) -> str:
    """The as-of date and a hash of the content (changes.content_digest: the same whether the night wrote
    all rows or only the changed ones), the grant, the agreement version and the pseudonym key."""
    identity = "|".join(
        [mf.FORMAT, share.agreement.partner, share.dataset, share.grant.model_dump_json(),
         str(share.agreement.version), share.pseudonym_key_id, changes.content_digest(share.state)]
        + (["full"] if full else [])
    )  # fmt: skip
    return f"{as_of:%Y%m%d}-{mf.sha256(identity.encode())[:12]}"


def _republish(shares: Store, share: _Prepared, snapshot_id: str, signer) -> PublishedShare | str:
    """A rerun with the same content writes nothing: it verifies the published snapshot, its sources and
    the pointer (a tampered one is audited and named), then renews or moves the pointer."""
    partner, dataset = share.agreement.partner, share.dataset
    dataset_prefix = mf.dataset_prefix(partner, dataset)
    snapshot = mf.snapshot_prefix(partner, dataset, snapshot_id)
    public_key = signer.public_key()
    keys = _hub_keys(shares, partner, {public_key_id(public_key): public_key})
    try:
        verified = mf.verify_snapshot(shares.get_bytes, snapshot + mf.MANIFEST, dataset_prefix, keys,
                                      partner=partner, dataset=dataset)  # fmt: skip
        mf.read_sources(shares.get_bytes, snapshot, verified)  # the source batches it names, unaltered
        manifest = mf.read_manifest(verified, snapshot + mf.MANIFEST)
        if shares.exists(dataset_prefix + mf.LATEST):  # the pointer partners follow is checked too
            mf.verify_signed(shares.get_bytes(dataset_prefix + mf.LATEST),
                             shares.get_bytes(dataset_prefix + mf.LATEST_SIGNATURE), keys,
                             dataset_prefix + mf.LATEST)  # fmt: skip
    except mf.ManifestError as exc:
        audit.append(shares, "tamper_detected", partner=partner, dataset=dataset,
                     snapshot_id=snapshot_id, problem=str(exc))  # fmt: skip
        log.error("%s/%s snapshot %s: %s", partner, dataset, snapshot_id, exc)
        return f"{partner}/{dataset} snapshot {snapshot_id}: {exc}"
    _move_latest(
        shares, partner, dataset, manifest, signer, cadence_hours=share.agreement.expected_cadence_hours
    )
    _record_state(shares, share, manifest)
    return PublishedShare(partner, dataset, snapshot_id, delta.table_uri(shares, dataset_prefix),
                          share.rows, False, manifest.delta_version)  # fmt: skip


def _record_state(shares: Store, share: _Prepared, manifest: mf.SnapshotManifest) -> None:
    """After the pointer moved: what the next night's changes are computed against (changes.py). A share
    without a key of its own per row (an aggregate, a key that repeats) keeps no state: prepared whole."""
    if not share.changes_only and not changes.keys_unique(share.state):
        shares.delete(changes.state_key(share.agreement.partner, share.dataset))
        return
    state = changes.State(manifest.snapshot_id, manifest.delta_version, share.fingerprint, share.state,
                          share.source_hash_of)  # fmt: skip
    changes.write_state(shares, share.agreement.partner, share.dataset, state)


def _write_new(
    shares: Store, share: _Prepared, snapshot_id: str, as_of: date, today: date, signer, full: bool
) -> PublishedShare:
    """The night's Delta version, then the manifest and its signature, then the pointer; audited."""
    agreement, partner = share.agreement, share.agreement.partner
    dataset_prefix = mf.dataset_prefix(partner, share.dataset)
    snapshot = mf.snapshot_prefix(partner, share.dataset, snapshot_id)
    public_key = signer.public_key()
    written, listing, chain = _write_version(
        shares, share, dataset_prefix, {public_key_id(public_key): public_key}, full
    )
    document = _manifest_document(
        share, snapshot_id, as_of, today, written.version, public_key_id(public_key)
    )
    document.update(source=_write_sources(shares, snapshot, share), **chain)
    shares.put_bytes(snapshot + mf.LISTING, listing, "application/json")
    manifest_bytes = mf.encode(document)
    shares.put_bytes(snapshot + mf.MANIFEST, manifest_bytes, "application/json")
    shares.put_bytes(snapshot + mf.SIGNATURE, mf.sign(manifest_bytes, signer), "text/plain")
    manifest = mf.read_manifest(json.loads(manifest_bytes), snapshot + mf.MANIFEST)
    _move_latest(
        shares, partner, share.dataset, manifest, signer, cadence_hours=agreement.expected_cadence_hours
    )
    _record_state(shares, share, manifest)
    audit.append(
        shares, "published", partner=partner, dataset=share.dataset, snapshot_id=snapshot_id,
        as_of=as_of, rows=share.rows, delta_version=written.version, agreement_version=agreement.version,
        source_batches=len(share.batch_ids), manifest_sha256=mf.sha256(manifest_bytes),
        write_mode=written.mode, files_added=len(written.added), files_removed=len(written.removed),
    )  # fmt: skip
    log.info(
        "published %s/%s snapshot %s (%d rows, %s)",
        partner,
        share.dataset,
        snapshot_id,
        share.rows,
        f"{share.table.num_rows} prepared" + (" (changed rows)" if share.changes_only else ""),
    )
    added = manifest.listing.added
    return PublishedShare(partner, share.dataset, snapshot_id, delta.table_uri(shares, dataset_prefix),
                          share.rows, True, written.version, written.mode,
                          len(added), sum(f.bytes or 0 for f in added))  # fmt: skip


def _manifest_document(
    share: _Prepared, snapshot_id: str, as_of: date, today: date, version: int, signing_key_id: str
) -> dict:
    """The manifest's fields that describe the share (the files, sources and chain are added to it)."""
    agreement = share.agreement
    return {
        "format": mf.FORMAT,
        "partner": agreement.partner,
        "dataset": share.dataset,
        "share": agreement.partner,
        "schema": agreement.schema_name,
        "snapshot_id": snapshot_id,
        "as_of": as_of.isoformat(),
        "created_at": datetime.now(UTC).isoformat(),
        "published_on": today.isoformat(),  # local date; retention counts from it
        "delta_version": version,
        "agreement": {
            "version": agreement.version,
            "sha256": agreement.text_sha256,
            "purpose": agreement.purpose,
            "retention_days": agreement.retention_days,
            "expires_on": agreement.expires_on.isoformat(),
        },
        "rows": share.rows,
        "columns": [{"name": f.name, "type": str(f.type)} for f in share.table.schema],
        "treatments": {c: share.grant.columns[c] for c in share.grant.shared_columns},
        "pseudonym_key_id": share.pseudonym_key_id,
        "signing_key_id": signing_key_id,
        "quality": {"pii_guard": "passed", "source_batches": share.sources.quality_summary()},
        "redactions": share.redactions,
    }


def _write_version(
    shares: Store, share: _Prepared, prefix: str, trusted: dict, full: bool
) -> tuple[incremental.Written, bytes, dict]:
    """Write the night's Delta version (merge of the changes, or full); its `files.json` and the manifest's
    fields that chain it to the previous manifest and name the files this version added and removed."""
    keys = _hub_keys(shares, share.agreement.partner, trusted)
    previous = incremental.previous_published(shares, prefix, keys)
    fingerprint = share.fingerprint
    key = share.grant.key if share.grant.key in share.table.schema.names else None
    asked = incremental.full_snapshot_asked(shares, share.agreement.partner, share.dataset)
    why_full = "full re-snapshot asked for (--full)" if full else asked
    log_days = share.agreement.retention_days + 1
    if share.changes_only:  # only the night's changed rows were prepared: merge them, delete the gone
        written = incremental.write_changes(shares, prefix, share.table, share.deletes, key=key,
                                            base_version=previous.manifest.delta_version, updated=share.rows_updated, match_from=share.match_from,
                                            log_days=log_days)  # fmt: skip
    else:
        written = incremental.write(shares, prefix, share.table, key=key, fingerprint=fingerprint,
                                    previous=previous, full=why_full, log_days=log_days,
                                    time_column=share.grant.as_of_column)  # fmt: skip
    if asked:
        incremental.ask_full_snapshot(shares, share.agreement.partner, share.dataset, None)
    earlier = previous.files if previous else []
    files = incremental.file_entries(shares, prefix, written.version, earlier)
    listing = mf.listing_change(files, earlier, previous.manifest.snapshot_id if previous else None)
    chain = {
        "share_fingerprint": fingerprint,
        "previous": None if previous is None else {
            "snapshot_id": previous.manifest.snapshot_id,
            "manifest_sha256": previous.manifest_sha256,
            "delta_version": previous.manifest.delta_version,
        },
        "write": {"mode": written.mode, "reason": written.reason, "key": written.key,
                  "rows_inserted": written.rows_inserted, "rows_updated": written.rows_updated,
                  "rows_deleted": written.rows_deleted,
                  # rows read, treated, redacted and guarded: the night's changed rows, or every granted row
                  "rows_prepared": share.table.num_rows, "changes_only": share.changes_only},
        "listing": listing[1].model_dump(mode="json"),
        "change_files": incremental.change_file_entries(shares, prefix, written),
    }  # fmt: skip
    return written, listing[0], chain


def _write_sources(shares: Store, snapshot: str, share: _Prepared) -> dict:
    """The source batches of the snapshot (a list that grows with history) go to chunk files per load
    month and `sources.json` beside the manifest, which names it by sha256 (source_chunks.py): partners
    fetch them when they trace a number, not with every nightly pull."""
    partner = share.agreement.partner
    data = source_chunks.write(shares, mf.dataset_prefix(partner, share.dataset), snapshot, partner,
                               share.dataset, share.sources)  # fmt: skip
    return {"table": share.grant.source, "batch_count": share.sources.batch_count, "batches_file": mf.SOURCES,
            "batches_sha256": mf.sha256(data)}  # fmt: skip


def _hub_keys(shares: Store, partner: str, current: dict) -> dict:
    """The current signing key and the published ones (a manifest signed before a rotation stays valid)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys = dict(current)
    for k in shares.list(f"share/{partner}/keys/"):
        key = load_pem_public_key(shares.get_bytes(k))
        keys[public_key_id(key)] = key
    return keys


def _ensure_public_key(shares: Store, partner: str, public_key) -> None:
    pem = public_key_pem(public_key)
    current = f"share/{partner}/{PUBLIC_KEY_FILE}"
    if shares.get_bytes(current) != pem:
        shares.put_bytes(current, pem, "application/x-pem-file")
    by_id = f"share/{partner}/keys/{public_key_id(public_key)}.pub.pem"
    if not shares.exists(by_id):
        shares.put_bytes(by_id, pem, "application/x-pem-file")


def _next_sequence(shares: Store, partner: str, dataset: str) -> int:
    """Pointer sequence numbers only grow, also across a withdrawal (kept outside the partner's prefix)."""
    key = f"_hub/pointer_sequence/{partner}/{dataset}"
    sequence = int((shares.get_bytes(key) or b"0").decode()) + 1
    shares.put_bytes(key, str(sequence).encode(), "text/plain")
    return sequence


def _move_latest(
    shares: Store,
    partner: str,
    dataset: str,
    manifest: mf.SnapshotManifest,
    signer,
    *,
    cadence_hours: int,
    correction: mf.Correction | None = None,
) -> None:
    """Point `latest` at the snapshot; never back to an older as-of date unless this is an audited
    `correction` (repoint), which the signed pointer then carries so partners accept the step back.
    A pointer that stays is signed again with this publication's time (partners check its freshness)."""
    prefix = mf.dataset_prefix(partner, dataset)
    current = _current_pointer(shares, prefix)
    same = current is not None and current.snapshot_id == manifest.snapshot_id
    newer = current is not None and current.as_of > manifest.as_of
    if same or (newer and correction is None):
        if not same:
            log.info("%s/%s: latest stays at %s (as of %s), newer than %s", partner, dataset,
                     current.snapshot_id, current.as_of, manifest.as_of)  # fmt: skip
        _renew_latest(shares, partner, dataset, signer, cadence_hours)
        return
    manifest_key = f"{mf.SNAPSHOTS}{manifest.snapshot_id}/{mf.MANIFEST}"
    pointer = mf.LatestPointer(
        partner=partner, dataset=dataset, snapshot_id=manifest.snapshot_id, as_of=manifest.as_of,
        delta_version=manifest.delta_version, manifest=manifest_key,
        manifest_sha256=mf.sha256(shares.get_bytes(prefix + manifest_key)),
        sequence=_next_sequence(shares, partner, dataset), signing_key_id=public_key_id(signer.public_key()),
        published_at=datetime.now(UTC), expected_cadence_hours=cadence_hours, correction=correction,
    )  # fmt: skip
    _put_pointer(shares, prefix, pointer, signer)


def _current_pointer(shares: Store, prefix: str) -> mf.LatestPointer | None:
    """The pointer as it lies (unverified: it only decides whether to move; renewing verifies it)."""
    data = shares.get_bytes(prefix + mf.LATEST)
    if data is None:
        return None
    try:
        return mf.read_pointer(json.loads(data), prefix + mf.LATEST)
    except (ValueError, mf.ManifestError):
        return None


def _renew_latest(shares: Store, partner: str, dataset: str, signer, cadence_hours: int) -> None:
    """Sign the current pointer again with this publication's time, only if it verifies (a tampered
    pointer is never laundered with a fresh signature); its snapshot, sequence and correction stay."""
    prefix = mf.dataset_prefix(partner, dataset)
    public_key = signer.public_key()
    keys = _hub_keys(shares, partner, {public_key_id(public_key): public_key})
    try:
        document = mf.verify_signed(shares.get_bytes(prefix + mf.LATEST),
                                    shares.get_bytes(prefix + mf.LATEST_SIGNATURE), keys, prefix + mf.LATEST)  # fmt: skip
        current = mf.read_pointer(document, prefix + mf.LATEST)
    except mf.ManifestError as exc:
        log.warning("%s/%s: latest pointer not renewed: %s", partner, dataset, exc)
        return
    renewed = current.model_copy(update={"published_at": datetime.now(UTC), "expected_cadence_hours": cadence_hours,
                                         "signing_key_id": public_key_id(public_key)})  # fmt: skip
    _put_pointer(shares, prefix, renewed, signer)


def _put_pointer(shares: Store, prefix: str, pointer: mf.LatestPointer, signer) -> None:
    pointer_bytes = pointer.encode()
    shares.put_bytes(prefix + mf.LATEST, pointer_bytes, "application/json")
    shares.put_bytes(prefix + mf.LATEST_SIGNATURE, mf.sign(pointer_bytes, signer), "text/plain")


# --- correcting a pointer -------------------------------------------------------------------------------
def repoint(
    settings: Settings,
    shares: Store,
    partner: str,
    dataset: str,
    *,
    reason: str,
    by: str,
    snapshot_id: str | None = None,
    as_of: date | None = None,
) -> mf.LatestPointer:
    """Move a dataset's `latest` pointer to a published snapshot (by id, or the newest one as of a date),
    also back to an older as-of date: the fix for a pointer advanced wrongly (a wall-clock as-of date).

    The snapshot is verified first (signature, hashes); the new pointer carries the correction (reason,
    the snapshot it replaces), its sequence still grows, and the move is audited. Returns the pointer."""
    if not reason.strip():
        raise ShareError("a repoint needs a --reason (it goes to the audit log)")
    prefix = mf.dataset_prefix(partner, dataset)
    target = _repoint_target(_manifests(shares, prefix), partner, dataset, snapshot_id, as_of)
    signer = signing_key(settings.home / "secrets", allow_generate=False)
    public_key = signer.public_key()
    keys = _hub_keys(shares, partner, {public_key_id(public_key): public_key})
    manifest_key = prefix + mf.SNAPSHOTS + target + "/" + mf.MANIFEST
    verified = mf.verify_snapshot(
        shares.get_bytes, manifest_key, prefix, keys, partner=partner, dataset=dataset
    )
    manifest = mf.read_manifest(verified, manifest_key)
    before = _current_pointer(shares, prefix)
    if before is not None and before.snapshot_id == target:
        raise ShareError(f"{partner}/{dataset}: latest already points at {target} (as of {before.as_of})")
    correction = mf.Correction(reason=reason, by=by, replaces=before.snapshot_id if before else None)
    _move_latest(shares, partner, dataset, manifest, signer, cadence_hours=_cadence_hours(settings, partner),
                 correction=correction)  # fmt: skip
    audit.append(
        shares, "pointer_corrected", partner=partner, dataset=dataset, snapshot_id=target,
        as_of=manifest.as_of, replaced=correction.replaces, replaced_as_of=before.as_of if before else None,
        reason=reason, by=by,
    )  # fmt: skip
    return _current_pointer(shares, prefix)


def _cadence_hours(settings: Settings, partner: str) -> int:
    agreement = load_agreements(settings.agreements_dir).get(partner)
    return agreement.expected_cadence_hours if agreement else mf.DEFAULT_CADENCE_HOURS


def _repoint_target(
    manifests: dict[str, mf.SnapshotManifest],
    partner: str,
    dataset: str,
    snapshot_id: str | None,
    as_of: date | None,
) -> str:
    if (snapshot_id is None) == (as_of is None):
        raise ShareError("name the target: exactly one of a snapshot id or an as-of date")
    if not manifests:
        raise ShareError(f"{partner}/{dataset}: no published snapshot to point at")
    if snapshot_id is not None:
        if snapshot_id not in manifests:
            raise ShareError(
                f"{partner}/{dataset}: no snapshot {snapshot_id}; published: {sorted(manifests)}"
            )
        return snapshot_id
    dated = [(m.created_at, sid) for sid, m in manifests.items() if m.as_of == as_of]
    if not dated:
        have = sorted({m.as_of.isoformat() for m in manifests.values()})
        raise ShareError(f"{partner}/{dataset}: no snapshot as of {as_of}; published as of: {have}")
    return max(dated)[1]
