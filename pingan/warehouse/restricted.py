"""The restricted tier: the only place inside the hub where a pseudonym turns back into a raw value.

`$PINGAN_HOME/restricted.duckdb` is a DuckDB file encrypted with DuckDB's database encryption (AES-GCM,
`ATTACH ... (ENCRYPTION_KEY ...)`), mode 0600, kept by the night in step with the lake's committed batches (tonight's added, the gone dropped).
One table, `personal_data`: per raw value of a personal-data column (pingan.core.canonical.PERSONAL_DATA,
each element of a ';'-separated list), its hub pseudonym and the record it came from. Its key is
`PINGAN_RESTRICTED_KEY` (hex; a secret store in prod) or `$PINGAN_HOME/secrets/restricted.key` (0600,
generated in `local`), apart from the hub key: holding the analyst warehouse and the hub key is not enough.

Reads go through `lookup`, which writes one audit entry (who, why, which pseudonyms and how many rows,
never the values) before returning anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from pingan.core import audit
from pingan.core.canonical import PERSONAL_DATA, PERSONAL_DATA_RETENTION_DAYS, local_today
from pingan.core.pseudonym import load_hub_key, load_secret_key, register_pseudonym_functions
from pingan.core.settings import Settings
from pingan.core.storage import Store, load_httpfs
from pingan.raw_zone import RawBatch

RESTRICTED_KEY_ENV = "PINGAN_RESTRICTED_KEY"
TABLE = "personal_data"
ALIAS = "restricted"


class RestrictedStoreError(RuntimeError):
    """The restricted store is missing or cannot be opened (wrong or no key)."""


@dataclass(frozen=True)
class LookupResult:
    pseudonym: str
    rows: list[dict]  # entity, column, value, record_id, jurisdiction_code, load_date


def restricted_path(settings: Settings) -> Path:
    return settings.home / "restricted.duckdb"


def restricted_key(settings: Settings) -> str:
    return load_secret_key(settings, settings.home / "secrets" / "restricted.key", RESTRICTED_KEY_ENV).hex()


def attach(
    con: duckdb.DuckDBPyConnection, path: Path, key: str, *, read_only: bool = True, alias: str = ALIAS
) -> None:
    """Attach an encrypted store as `alias`. Writing one needs httpfs loaded first: without it DuckDB has
    only a read-only crypto module and refuses to write an encrypted file (on a machine whose extension
    directory is still empty, a fresh install's first night)."""
    mode = ", READ_ONLY" if read_only else ""
    if not read_only:
        load_httpfs(con)  # from the installed wheel, never the network
    try:
        con.execute(f"ATTACH '{path}' AS {alias} (ENCRYPTION_KEY '{key}'{mode})")
    except duckdb.Error as exc:  # never echo the statement: it holds the key
        raise RestrictedStoreError(f"cannot open the restricted store {path}: {type(exc).__name__}") from None


INFO = "build_info"  # which hub key made the pseudonyms (an id derived from it, not the key)
LOADED = "loaded_batches"  # (entity, batch_id) whose values the store holds: what a night adds or drops
COLUMNS_SQL = (
    "pseudonym VARCHAR, entity VARCHAR, column_name VARCHAR, value VARCHAR, record_id VARCHAR,"
    " jurisdiction_code VARCHAR, load_date DATE, batch_id VARCHAR"
)


def build_restricted(
    settings: Settings, batches: list[RawBatch], lake: Store, *, as_of: date | None = None, full: bool = False
) -> int:
    """Bring the store to the committed batches still within retention on `as_of` (default: the latest load
    date): a copy of it drops the batches no longer wanted (past retention, withdrawn, replaced by a rerun)
    and reads only the new ones, then replaces it, so a night decrypts tonight's files, not the retention
    window's. `full` (or a store without its batch list) rebuilds from every wanted batch. Rows held."""
    wanted = [b for b in within_retention(batches, as_of) if b.entity in PERSONAL_DATA]
    path = restricted_path(settings)
    work = path.with_name(path.name + ".building")
    work.unlink(missing_ok=True)
    hub_key = load_hub_key(settings)
    con = duckdb.connect()
    register_pseudonym_functions(con, hub_key)
    _attach_work(con, path, work, restricted_key(settings), copy=not full)
    loaded = _loaded_batches(con, hashlib.sha256(b"pingan-restricted-hub-key:" + hub_key).hexdigest()[:16])
    wanted_ids = {(b.entity, b.batch_id) for b in wanted}
    _drop_batches(con, loaded - wanted_ids)
    for batch in (b for b in wanted if (b.entity, b.batch_id) not in loaded):
        _add_batch(con, lake, batch)
    rows = con.execute(f"SELECT count(*) FROM {ALIAS}.{TABLE}").fetchone()[0]
    con.execute(f"DETACH {ALIAS}")
    con.close()
    os.chmod(work, 0o600)
    os.replace(work, path)
    return rows


def _attach_work(con: duckdb.DuckDBPyConnection, path: Path, work: Path, key: str, *, copy: bool) -> None:
    """Attach the working file: a copy of the store, or a new file when asked, when there is none, or when
    the copy does not open with tonight's key (a rotated restricted key: the store is rebuilt under it)."""
    if copy and path.exists():
        shutil.copyfile(path, work)
        try:
            attach(con, work, key, read_only=False)
            return
        except RestrictedStoreError:
            work.unlink(missing_ok=True)
    attach(con, work, key, read_only=False)


def _loaded_batches(con: duckdb.DuckDBPyConnection, hub_key_id: str) -> set[tuple[str, str]]:
    """The batches the attached store holds. A new file, a store without its batch list, or one whose
    pseudonyms came from another hub key (rotated: every pseudonym changes) starts empty."""
    tables = {r[0] for r in con.execute(
        f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{ALIAS}'").fetchall()}  # fmt: skip
    if {LOADED, INFO} <= tables and con.execute(f"SELECT hub_key_id FROM {ALIAS}.{INFO}").fetchall() == [
        (hub_key_id,)
    ]:
        return set(con.execute(f"SELECT entity, batch_id FROM {ALIAS}.{LOADED}").fetchall())
    for table in (TABLE, LOADED, INFO):
        con.execute(f"DROP TABLE IF EXISTS {ALIAS}.{table}")
    con.execute(f"CREATE TABLE {ALIAS}.{TABLE} ({COLUMNS_SQL})")
    con.execute(f"CREATE TABLE {ALIAS}.{LOADED} (entity VARCHAR, batch_id VARCHAR)")
    con.execute(f"CREATE TABLE {ALIAS}.{INFO} AS SELECT ? AS hub_key_id", [hub_key_id])
    return set()


def _drop_batches(con: duckdb.DuckDBPyConnection, gone: set[tuple[str, str]]) -> None:
    for entity, batch_id in gone:
        for table in (TABLE, LOADED):
            con.execute(f"DELETE FROM {ALIAS}.{table} WHERE entity = ? AND batch_id = ?", [entity, batch_id])


def _add_batch(con: duckdb.DuckDBPyConnection, lake: Store, batch: RawBatch) -> None:
    """The batch's personal-data values, decrypted by pyarrow (the raw zone is encrypted), file by file."""
    columns = PERSONAL_DATA[batch.entity]
    for uri in batch.files:
        table = lake.read_parquet(lake.key_of(uri))
        con.register("_raw_file", table)
        for column, treatment in columns.items():
            if column in table.column_names:
                con.execute(_insert_sql(batch.entity, column, treatment, "_raw_file"))
        con.unregister("_raw_file")
    con.execute(f"INSERT INTO {ALIAS}.{LOADED} VALUES (?, ?)", [batch.entity, batch.batch_id])


def within_retention(batches: list[RawBatch], as_of: date | None) -> list[RawBatch]:
    """The batches whose raw personal data may still be kept on `as_of` (PERSONAL_DATA_RETENTION_DAYS)."""
    if as_of is None:
        as_of = max((b.load_date for b in batches), default=local_today())
    return [
        b
        for b in batches
        if b.load_date > as_of - timedelta(days=PERSONAL_DATA_RETENTION_DAYS.get(b.entity, 0))
    ]


def apply_retention(
    settings: Settings, batches: list[RawBatch], lake: Store, audit_store: Store, as_of: date
) -> dict:
    """Remove raw personal data past retention from the restricted store; audits the counts, never values."""
    before = _count_rows(settings)
    after = build_restricted(settings, batches, lake, as_of=as_of)
    removed_batches = len([b for b in batches if b.entity in PERSONAL_DATA]) - len(
        [b for b in within_retention(batches, as_of) if b.entity in PERSONAL_DATA]
    )
    counts = {"as_of": as_of.isoformat(), "rows_before": before, "rows_after": after,
              "batches_past_retention": removed_batches, "retention_days": PERSONAL_DATA_RETENTION_DAYS}  # fmt: skip
    audit.append(audit_store, "personal_data_retention", tier="restricted", **counts)
    return counts


def _count_rows(settings: Settings) -> int:
    path = restricted_path(settings)
    if not path.exists():
        return 0
    con = duckdb.connect()
    attach(con, path, restricted_key(settings))
    return con.execute(f"SELECT count(*) FROM {ALIAS}.{TABLE}").fetchone()[0]


def _insert_sql(entity: str, column: str, treatment: str, scan: str) -> str:
    element = (
        f"trim(unnest(string_split(\"{column}\", ';')))" if treatment == "pseudonym_list" else f'"{column}"'
    )
    return (
        f"INSERT INTO {ALIAS}.{TABLE} SELECT DISTINCT pingan_pseudonym(value), '{entity}', '{column}', value,"
        " record_id, jurisdiction_code, load_date, batch_id FROM ("
        f"  SELECT {element} AS value, record_id, jurisdiction_code, load_date, batch_id"
        f"   FROM {scan})"
        " WHERE value IS NOT NULL AND value <> ''"
    )


def lookup(
    settings: Settings, audit_store: Store, pseudonym: str, *, analyst: str, case: str, reason: str
) -> LookupResult:
    """The raw values behind one pseudonym, after the audit entry that records who asked and why."""
    if not case.strip() or not reason.strip():
        raise RestrictedStoreError("a lookup needs a case number and a reason")
    path = restricted_path(settings)
    if not path.exists():
        raise RestrictedStoreError(f"no restricted store at {path}: the night builds it (`pingan run`)")
    con = duckdb.connect()
    attach(con, path, restricted_key(settings))
    cur = con.execute(
        f"SELECT entity, column_name, value, record_id, jurisdiction_code, load_date FROM {ALIAS}.{TABLE}"
        " WHERE pseudonym = ? ORDER BY load_date, record_id",
        [pseudonym],
    )
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    audit.append(
        audit_store,
        "restricted_lookup",
        analyst=analyst,
        case=case,
        reason=reason,
        pseudonyms=[pseudonym],
        record_ids=sorted({r["record_id"] for r in rows}),
        rows=len(rows),
    )
    return LookupResult(pseudonym, rows)
