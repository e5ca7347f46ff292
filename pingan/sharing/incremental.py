"""Nightly share versions that carry only what changed since the partner's published version.

A night's changed rows (publish.py prepares only those when the hub's state of the last publication
holds, changes.py) are merged as they are (`write_changes`); a dataset prepared whole (the first publish,
an aggregate, a state that cannot be trusted) is compared with the rows of the Delta version the
`latest` manifest names (`write`). The difference is written with Delta's merge as one new version: changed rows updated, new rows inserted, rows gone from the grant (withdrawn,
or no longer passing the agreement's filter) deleted. So the version adds only files holding the night's
rows (plus the rewrite of a file in which a row was updated or deleted), and Delta's change data feed
(`_change_data/`) records the row changes for the share server's `/changes` answer.

A full overwrite is written instead on the first publish, on `pingan publish --full`, and when the share's
fingerprint (the agreement's text, the grant, the pseudonym key, the columns) differs from the previous
manifest's: retention and agreement changes re-snapshot. The merged table always holds exactly the rows a
full re-snapshot would hold (tests/sharing/test_share_incremental.py).

Rows are matched on the dataset's one key column (`key_per_partnership`: stable per partnership); a
dataset without one (aggregates) is matched on all its columns, null-safe, unless it holds duplicate rows,
which only a full overwrite can express.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

import pyarrow as pa

from pingan.core.storage import Store
from pingan.sharing import delta
from pingan.sharing import manifest as mf
from pingan.sharing.changes import memory as changes_memory

CDF_PROPERTY = delta.CDF_PROPERTY
LOG = "_delta_log/"


@dataclass(frozen=True)
class Previous:
    """The published version a night's changes are computed against (from the signed `latest` manifest)."""

    manifest: mf.SnapshotManifest
    manifest_sha256: str
    files: list[mf.ManifestFile]  # every data file of it (its files.json, checked)


@dataclass(frozen=True)
class Written:
    """What one publish wrote to a dataset's Delta table."""

    version: int
    mode: str  # full | merge | unchanged
    reason: str
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    added: list[str] = field(default_factory=list)  # data files the version added
    removed: list[str] = field(default_factory=list)  # data files the version removed
    change_files: list[str] = field(default_factory=list)  # `_change_data/` files of the version
    key: str | None = None  # the column a merge matched rows on (None: whole rows)


@dataclass(frozen=True)
class VersionActions:
    """One commit of the Delta log: its data files added and removed, its change-data files."""

    version: int
    timestamp_ms: int
    added: list[dict]
    removed: list[dict]
    cdc: list[dict]


def share_fingerprint(
    agreement_sha256: str, grant_json: str, pseudonym_key_id: str, schema: pa.Schema
) -> str:
    """Changes when anything but the rows would make the published table differ: then a full re-snapshot."""
    columns = [(f.name, str(f.type)) for f in schema]
    text = json.dumps([agreement_sha256, grant_json, pseudonym_key_id, columns], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write(
    shares: Store,
    prefix: str,
    table: pa.Table,
    *,
    key: str | None,
    fingerprint: str,
    previous: Previous | None,
    full: str = "",
    log_days: int = 30,
    time_column: str | None = None,
) -> Written:
    """Write the night's version of one dataset: a merge of the changes, or a full overwrite (its files
    cut per month of `time_column`, the grant's as-of column: delta.write_version).

    full: why a full re-snapshot is asked for (`--full`, retention); empty: merge when possible.
    log_days: how long the Delta log keeps a version (the agreement's retention: time travel and the
    change feed reach back as far as snapshots are kept; Delta's default is 30 days)."""
    properties = table_properties(log_days)
    reason = _full_reason(shares, prefix, fingerprint, previous, full)
    if reason:
        version = delta.write_version(shares, prefix, table, properties=properties, time_column=time_column)
        return _with_actions(shares, prefix, Written(version, "full", reason, rows_inserted=table.num_rows))
    base_version = previous.manifest.delta_version
    current = delta.open_table(shares, prefix, base_version).to_pyarrow_table()
    try:
        current = current.select(table.column_names).cast(table.schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        version = delta.write_version(shares, prefix, table, properties=properties, time_column=time_column)
        return _with_actions(shares, prefix, Written(version, "full", f"published rows unreadable: {exc}"))
    changes = _changes(current, table, key)
    if changes is None:
        version = delta.write_version(shares, prefix, table, properties=properties, time_column=time_column)
        return _with_actions(shares, prefix, Written(version, "full", "duplicate rows without a key"))
    upserts, deletes, updated, key = changes
    if upserts.num_rows == 0 and deletes.num_rows == 0:
        return Written(base_version, "unchanged", "no row changed")
    version = _merge(shares, prefix, table.schema, upserts, deletes, key, properties)
    written = Written(
        version, "merge", "night's changes", upserts.num_rows - updated, updated, deletes.num_rows, key=key
    )
    return _with_actions(shares, prefix, written)


def write_changes(
    shares: Store,
    prefix: str,
    upserts: pa.Table,
    deletes: pa.Array,
    *,
    key: str,
    base_version: int,
    updated: int,
    match_from: tuple[str, str] | None = None,
    log_days: int = 30,
) -> Written:
    """Merge a night's prepared changes (changes.py: only the rows whose source changed were read): the
    rows to upsert (`updated` of them replace a published row, by the hub's state), and the keyed ids of
    the published rows that go. match_from: (column, literal) every published row the night touches is at
    or after: the merge skips the files whose statistics end before it (without it, a merge scans every
    file of the table, the whole history)."""
    if upserts.num_rows == 0 and len(deletes) == 0:
        return Written(base_version, "unchanged", "no row changed")
    gone = pa.table(
        {
            c: deletes.cast(f.type) if c == key else pa.nulls(len(deletes), f.type)
            for c, f in zip(upserts.column_names, upserts.schema, strict=True)
        }  # fmt: skip
    )
    target = f"t.`{match_from[0]}` >= {match_from[1]}" if match_from else ""
    version = _merge(shares, prefix, upserts.schema, upserts, gone, key, table_properties(log_days), target)
    written = Written(
        version, "merge", "night's changed rows", upserts.num_rows - updated, updated, len(deletes), key=key
    )
    return _with_actions(shares, prefix, written)


def _full_reason(shares: Store, prefix: str, fingerprint: str, previous: Previous | None, full: str) -> str:
    if full:
        return full
    if previous is None or not delta.exists(shares, prefix):
        return "first snapshot"
    if previous.manifest.share_fingerprint != fingerprint:
        return "agreement, grant, pseudonym key or columns changed"
    if delta.open_table(shares, prefix).version() != previous.manifest.delta_version:
        return "the Delta table moved past the last signed version"
    return ""


def _changes(
    current: pa.Table, table: pa.Table, key: str | None
) -> tuple[pa.Table, pa.Table, int, str | None] | None:
    """(rows to upsert, rows to delete, how many upserts update a row, the key to match on), or None when
    only a full write can express the change. EXCEPT ALL compares rows null-safe, as a full re-snapshot
    would."""
    con = changes_memory()  # a cursor on the run's in-memory database: a new database costs ~50 ms
    con.register("published", current)
    con.register("night", table)
    upserts = con.sql("SELECT * FROM night EXCEPT ALL SELECT * FROM published").to_arrow_table()
    gone = con.sql("SELECT * FROM published EXCEPT ALL SELECT * FROM night").to_arrow_table()
    if key is not None and not all(_unique(con, name, key) for name in ("published", "night")):
        key = None  # a key that repeats (or is null) cannot address one row: match whole rows instead
    if key is None:
        for name in ("published", "night"):
            total, distinct = con.sql(f"SELECT count(*), count(DISTINCT {name}) FROM {name}").fetchone()
            if total != distinct:
                return None
        return upserts.cast(table.schema), gone.cast(table.schema), 0, None
    con.register("upserts", upserts)
    con.register("gone", gone)
    k = _quote(key)
    deletes = con.sql(f"SELECT * FROM gone WHERE {k} NOT IN (SELECT {k} FROM upserts)").to_arrow_table()
    updated = con.sql(f"SELECT count(*) FROM upserts WHERE {k} IN (SELECT {k} FROM gone)").fetchone()[0]
    return upserts.cast(table.schema), deletes.cast(table.schema), updated, key


def _unique(con, table: str, column: str) -> bool:
    total, distinct = con.sql(f"SELECT count(*), count(DISTINCT {_quote(column)}) FROM {table}").fetchone()
    return total == distinct


def _merge(
    shares: Store,
    prefix: str,
    schema: pa.Schema,
    upserts: pa.Table,
    deletes: pa.Table,
    key: str | None,
    properties: dict[str, str],
    target: str = "",
) -> int:
    from deltalake import WriterProperties

    op = "_pingan_op"
    source = pa.concat_tables([upserts, deletes])
    source = source.append_column(op, pa.array(["upsert"] * upserts.num_rows + ["delete"] * deletes.num_rows))
    columns = schema.names
    on = [key] if key else columns
    predicate = " AND ".join(
        [f"(t.`{c}` IS NOT DISTINCT FROM s.`{c}`)" for c in on] + ([target] if target else [])
    )
    assign = {f"`{c}`": f"s.`{c}`" for c in columns}
    dt = delta.open_table(shares, prefix)
    delta.ensure_properties(dt, properties)
    (
        dt.merge(source, predicate=predicate, source_alias="s", target_alias="t",
                 writer_properties=WriterProperties(compression="ZSTD"))
        .when_matched_delete(predicate=f"s.{op} = 'delete'")
        .when_matched_update(updates=assign, predicate=f"s.{op} = 'upsert'")
        .when_not_matched_insert(updates=assign, predicate=f"s.{op} = 'upsert'")
        .execute()
    )  # fmt: skip
    return delta.open_table(shares, prefix).version()


def table_properties(log_days: int) -> dict[str, str]:
    return {CDF_PROPERTY: "true", "delta.logRetentionDuration": f"interval {log_days} days"}


def _with_actions(shares: Store, prefix: str, written: Written) -> Written:
    actions = version_actions(shares, prefix, written.version)
    added = [a["path"] for a in actions.added]
    removed = [r["path"] for r in actions.removed]
    return replace(written, added=added, removed=removed, change_files=[c["path"] for c in actions.cdc])


def version_actions(shares: Store, prefix: str, version: int) -> VersionActions:
    """The data-changing add and remove actions and the cdc actions of one commit, from its `_delta_log`
    JSON (an optimize's rewrite, dataChange false, changes no row: no partner reads it as a change)."""
    data = shares.get_bytes(f"{prefix}{LOG}{version:020d}.json")
    if data is None:
        raise FileNotFoundError(f"{shares.uri(prefix + LOG)}: no commit for version {version}")
    added, removed, cdc, timestamp = [], [], [], 0
    for line in data.decode().splitlines():
        if not line.strip():
            continue
        action = json.loads(line)
        if "commitInfo" in action:
            timestamp = int(action["commitInfo"].get("timestamp") or 0)
        elif "add" in action and action["add"].get("dataChange", True):  # not a compaction's rewrite
            added.append(action["add"])
        elif "remove" in action and action["remove"].get("dataChange", True):
            removed.append(action["remove"])
        elif "cdc" in action:
            cdc.append(action["cdc"])
    return VersionActions(version, timestamp, added, removed, cdc)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def previous_published(shares: Store, prefix: str, trusted: dict) -> Previous | None:
    """The manifest the signed `latest` pointer names and its files, if all verify; else None (a full
    snapshot follows, before anything is written)."""
    pointer_bytes = shares.get_bytes(prefix + mf.LATEST)
    if pointer_bytes is None:
        return None
    try:
        document = mf.verify_signed(pointer_bytes, shares.get_bytes(prefix + mf.LATEST_SIGNATURE), trusted,
                                    prefix + mf.LATEST)  # fmt: skip
        manifest_key = prefix + mf.read_pointer(document, prefix + mf.LATEST).manifest
        manifest_bytes = shares.get_bytes(manifest_key)
        signature = shares.get_bytes(manifest_key[: -len(mf.MANIFEST)] + mf.SIGNATURE)
        manifest = mf.read_manifest(
            mf.verify_signed(manifest_bytes, signature, trusted, manifest_key), manifest_key
        )
        files = mf.snapshot_files(shares.get_bytes, manifest_key[: -len(mf.MANIFEST)], manifest)
    except mf.ManifestError:
        return None
    return Previous(manifest, mf.sha256(manifest_bytes), files)


def file_entries(
    shares: Store, prefix: str, version: int, known: list[mf.ManifestFile]
) -> list[mf.ManifestFile]:
    """Every data file of the version with sha256: files the previous snapshot lists (`known`) keep its
    hash, so a night hashes only the files it added."""
    hashes = {f.path: f.sha256 for f in known}
    out = []
    for f in delta.files(shares, prefix, version):
        digest = hashes.get(f.path) or mf.sha256(shares.get_bytes(prefix + f.path))
        out.append(mf.ManifestFile(path=f.path, sha256=digest, bytes=f.size, rows=f.rows))
    return out


def change_file_entries(shares: Store, prefix: str, written: Written) -> list[dict]:
    return [
        {"path": p, "sha256": mf.sha256(data), "bytes": len(data)}
        for p in written.change_files
        if (data := shares.get_bytes(prefix + p)) is not None
    ]


def _full_marker(partner: str, dataset: str) -> str:
    return f"_hub/full_snapshot_asked/{partner}/{dataset}"  # outside the partner's prefix


def ask_full_snapshot(shares: Store, partner: str, dataset: str, why: str | None) -> None:
    """Ask the next publish of this dataset for a full re-snapshot (retention removed snapshots: the
    table is rewritten from scratch, its small nightly files compacted); None clears the request."""
    if why is None:
        shares.delete(_full_marker(partner, dataset))
    else:
        shares.put_bytes(_full_marker(partner, dataset), why.encode(), "text/plain")


def full_snapshot_asked(shares: Store, partner: str, dataset: str) -> str:
    """Why a full re-snapshot was asked for this dataset, or ""."""
    data = shares.get_bytes(_full_marker(partner, dataset))
    return data.decode() if data is not None else ""
