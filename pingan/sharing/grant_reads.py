"""What a grant reads from the published warehouse: its source's column types, the SQL of the rows it
selects on an as-of date (its row filter and the as-of bound), those rows in a stable order with their
source key, hash and day (changes.SOURCE_*), the batches they came from, and a night's reads for changes.diff
(DaysRead). The treatment of the rows read (pseudonyms, truncated times) is publish.py's."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.canonical import TZ
from pingan.sharing import changes
from pingan.sharing.agreements import AnyOf, Condition, DatasetGrant

WAREHOUSE_SCHEMA = "main"


class DaysRead:
    """changes.diff's scan for one share: every granted row's key and hash, then the whole granted rows of
    the days that differ, read once (the row comparison runs on them, and the changed ones among them are
    what the night treats: a second scan of the warehouse for those would cost as much again). When more
    than MAX_DAYS differ (a code mapping changed history), their keys and hashes are compared instead and
    only the changed rows read: memory stays bounded by the changes, not by the history."""

    _TABLE = "_pingan_days_read"
    MAX_DAYS = 62

    def __init__(self, con, grant: DatasetGrant, types: dict[str, str], as_of: date, source_key: str):
        self.con, self.grant, self.types, self.as_of, self.source_key = con, grant, types, as_of, source_key
        self.hashes = source_hashes(grant, types, as_of, source_key)
        self.rows: pa.Table | None = None
        self.days: list[int | None] = []

    def scan(self, days: list[int | None] | None) -> tuple[str, list]:
        if days is None:
            return self.hashes(None)
        self.days = days
        # rows without a day are read by key as well: without an as-of column they are the whole history
        if len(days) > self.MAX_DAYS or None in days:
            return self.hashes(days)
        self.rows = read_rows(self.con, self.grant, self.types, self.as_of, self.source_key, days=days)
        self.con.register(self._TABLE, self.rows)
        return (f"SELECT {changes.SOURCE_KEY} AS source_key, {changes.SOURCE_HASH} AS source_hash, "
                f"{changes.SOURCE_DAY} AS source_day, {BATCH} AS batch_id FROM {self._TABLE}"), []  # fmt: skip

    def close(self) -> None:
        if self.rows is not None:
            self.con.unregister(self._TABLE)

    def rows_of(self, changed: pa.Table) -> tuple[pa.Table, list[str]]:
        """The rows of these source keys (in the read's stable order) and their batches."""
        keys = changed["source_key"].combine_chunks().cast(pa.string())
        rows = self.rows
        if rows is None:  # no day differs, or too many to hold: the changed rows only
            rows = read_rows(self.con, self.grant, self.types, self.as_of, self.source_key, self.days, keys)
        rows = rows.filter(pc.is_in(rows[changes.SOURCE_KEY], value_set=keys))
        batches = pc.unique(rows[BATCH].drop_null()).to_pylist() if "batch_id" in self.types else []
        return rows.drop_columns([BATCH]), sorted(batches)


def source_types(con, grant: DatasetGrant) -> dict[str, str]:
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [WAREHOUSE_SCHEMA, grant.source],
        ).fetchall()
    )
    if not types:
        raise ValueError(f"source table {grant.source!r} is not in the warehouse")
    needed = (
        set(grant.columns) | {c.column for c in grant_conditions(grant)} | ({grant.as_of_column} - {None})
    )
    missing = sorted(needed - set(types))
    if missing:
        raise ValueError(f"{grant.source} has no column(s) {missing}")
    return types


def key_column(grant: DatasetGrant, types: dict[str, str]) -> str | None:
    """The source column a row is addressed by: the grant's one `key_per_partnership` column (the merge
    matches the published rows on its keyed form); None for a dataset without one."""
    return grant.key if grant.key in types else None


BATCH = "__pingan_batch_id"  # a read's extra column for the rows' batches (DaysRead)
# the build's hash of each whole row (dbt/macros/cross_db/row_hash.sql): the source hash a night compares; scanning
# it costs a fraction of hashing the granted columns (~16, texts among them) of every row of the history
ROW_HASH = "row_hash"


def source_hash_of(grant: DatasetGrant, types: dict[str, str]) -> str:
    """What a row's source hash is of: the build's row_hash ("row_hash"), or the granted columns
    ("columns") where the table has none (or the grant shares a column of that name)."""
    return "row_hash" if ROW_HASH in types and ROW_HASH not in grant.shared_columns else "columns"


def source_hash_sql(grant: DatasetGrant, types: dict[str, str]) -> str:
    """SQL of a row's source hash (changes.SOURCE_HASH): a change of any granted value changes it."""
    if source_hash_of(grant, types) == "row_hash":
        return f"CAST({ident(ROW_HASH)} AS UBIGINT)"
    return f"hash({', '.join(ident(c) for c in grant.shared_columns)})"


def read_rows(
    con,
    grant: DatasetGrant,
    types: dict[str, str],
    as_of: date,
    source_key: str | None,
    days: list | None = None,
    only: pa.Array | None = None,
) -> pa.Table:
    """The granted rows and columns in a stable order, each with its source key, source hash and source
    day (the changes.SOURCE_* columns); days: only the rows of these source days (changes.diff: the filter
    lets the scan skip the other days), with their batch (BATCH) as well; only: of these source keys."""
    predicate, params = grant_predicate(grant, types, as_of)
    source = f"{WAREHOUSE_SCHEMA}.{ident(grant.source)}"
    day, kind = as_of_column(grant, types)
    extras = ""
    if only is not None:
        con.register("_night_keys", pa.table({"source_key": only}))
        predicate += f" AND CAST({ident(source_key)} AS VARCHAR) IN (SELECT source_key FROM _night_keys)"
    if days is not None:
        within, day_params = changes.within_days(day, kind, days)
        predicate, params = f"{predicate} AND {within}", params + day_params
        extras = ", " + ("CAST(batch_id AS VARCHAR)" if "batch_id" in types else "CAST(NULL AS VARCHAR)")
        extras += f" AS {BATCH}"
    select = ", ".join(ident(c) for c in grant.shared_columns)
    key_sql = f"CAST({ident(source_key)} AS VARCHAR)" if source_key else "CAST(NULL AS VARCHAR)"
    extras = (f"{key_sql} AS {changes.SOURCE_KEY}, {source_hash_sql(grant, types)} AS {changes.SOURCE_HASH}, "
              f"{changes.day_sql(day, kind)} AS {changes.SOURCE_DAY}{extras}")  # fmt: skip
    try:  # ORDER BY ALL: the same rows always give the same bytes
        return con.execute(
            f"SELECT {select}, {extras} FROM {source} WHERE {predicate} ORDER BY ALL", params
        ).to_arrow_table()
    finally:
        if only is not None:
            con.unregister("_night_keys")


def granted_batch_ids(con, grant: DatasetGrant, types: dict[str, str], as_of: date) -> list[str]:
    """The raw-zone batches the share's rows came from (the manifest's sources)."""
    if "batch_id" not in types:
        return []
    predicate, params = grant_predicate(grant, types, as_of)
    source = f"{WAREHOUSE_SCHEMA}.{ident(grant.source)}"
    sql = f"SELECT DISTINCT batch_id FROM {source} WHERE {predicate} AND batch_id IS NOT NULL ORDER BY 1"
    return [r[0] for r in con.execute(sql, params).fetchall()]


def source_hashes(grant: DatasetGrant, types: dict[str, str], as_of: date, source_key: str) -> changes.Scan:
    """The SQL and parameters selecting source_key, source_hash, source_day of every row the grant selects
    tonight, or of those of some source days (no treatment: one vectorised scan, source_hash_sql)."""
    predicate, params = grant_predicate(grant, types, as_of)
    day, kind = as_of_column(grant, types)
    batch = "CAST(batch_id AS VARCHAR)" if "batch_id" in types else "CAST(NULL AS VARCHAR)"
    sql = (f"SELECT CAST({ident(source_key)} AS VARCHAR) AS source_key, {source_hash_sql(grant, types)} AS source_hash, "
           f"{changes.day_sql(day, kind)} AS source_day, {batch} AS batch_id "
           f"FROM {WAREHOUSE_SCHEMA}.{ident(grant.source)} WHERE {predicate}")  # fmt: skip

    def scan(days: list[int | None] | None) -> tuple[str, list]:
        if days is None:
            return sql, params
        within, day_params = changes.within_days(day, kind, days)
        return f"{sql} AND {within}", params + day_params

    return scan


def as_of_column(grant: DatasetGrant, types: dict[str, str]) -> tuple[str | None, str]:
    """The as-of column (quoted) and its DuckDB type: the source day of a row is computed from it."""
    if not grant.as_of_column:
        return None, ""
    return ident(grant.as_of_column), types.get(grant.as_of_column, "")


def grant_conditions(grant: DatasetGrant) -> list[Condition]:
    out: list[Condition] = []
    for item in grant.row_filter:
        out.extend(item.any_of if isinstance(item, AnyOf) else [item])
    return out


def grant_predicate(grant: DatasetGrant, types: dict[str, str], as_of: date) -> tuple[str, list]:
    clauses, params = ["true"], []

    def condition(c: Condition) -> str:
        if c.in_ is not None:
            params.extend(c.in_)
            return f"{ident(c.column)} IN ({', '.join('?' * len(c.in_))})"
        params.append(c.equals)
        return f"{ident(c.column)} = ?"

    for item in grant.row_filter:
        if isinstance(item, AnyOf):
            clauses.append("(" + " OR ".join(condition(c) for c in item.any_of) + ")")
        else:
            clauses.append(condition(item))
    if grant.as_of_column:
        column, kind = ident(grant.as_of_column), types[grant.as_of_column]
        if kind == "DATE":
            clauses.append(f"{column} <= ?")
            params.append(as_of)
        elif kind.startswith("TIMESTAMP"):
            # up to the end of the as-of day, local time
            clauses.append(f"{column} < ?")
            params.append(datetime.combine(as_of + timedelta(days=1), time(), ZoneInfo(TZ)))
        else:
            raise ValueError(f"as_of_column {grant.as_of_column} is {kind}, not a date or timestamp")
    return " AND ".join(clauses), params


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
