"""Erasure and correction in the hub's DuckDB files: the analysts' warehouse (every slot) and the restricted store.

The warehouse holds the person as hub pseudonyms: every text column of every table, in every warehouse
file (the published slot, the spare a later build starts from, a failed slot set aside), has the change
applied in place; views read the lake, already changed. The next build reads the changed lake too.

The restricted store is copied into a new encrypted file without (erase) or with corrected (correct) rows
and swapped in, so no freed page of the old file keeps a value.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pingan.core.settings import Settings
from pingan.ops.subject import ValueChange
from pingan.warehouse import restricted

UDF = "pingan_subject_change"


def warehouse_files(settings: Settings) -> list[Path]:
    """Every DuckDB file of the warehouse: the slots (`warehouse.a.duckdb`, ...) and a plain published file."""
    published = settings.warehouse_path
    stem, suffix = published.stem, published.suffix
    files = {p.resolve() for p in published.parent.glob(f"{stem}*{suffix}") if p.is_file()}
    return sorted(files)


def change_warehouse(path: Path, change: ValueChange) -> int:
    """Apply `change` to every text column of every table of one warehouse file; rows changed."""
    con = duckdb.connect(str(path))
    con.create_function(UDF, lambda v: change.apply(v, identifier_column=True), ["VARCHAR"], "VARCHAR",
                        null_handling="special", side_effects=False)  # fmt: skip
    pattern = change.prefilter
    changed, tables = 0, set()
    try:
        for schema, table, column in _text_columns(con):
            name = f'"{schema}"."{table}"'
            rows = con.execute(
                f'UPDATE {name} SET "{column}" = {UDF}("{column}") WHERE regexp_matches("{column}", ?)'
                f' AND {UDF}("{column}") IS DISTINCT FROM "{column}"',
                [pattern],
            ).fetchone()[0]
            changed += rows
            tables |= {(schema, table)} if rows else set()
        for schema, table in sorted(tables):
            _rehash_rows(con, schema, table)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return changed


def _rehash_rows(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    """A changed fact's row_hash (the build's change marker, dbt/macros/cross_db/row_hash.sql: a hash of
    the row's other columns in order) made again, so a night's share publication sees the changed rows
    in every share, not only in those the erasure republishes."""
    columns = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
        " and table_catalog = current_database() order by ordinal_position", [schema, table]).fetchall()]  # fmt: skip
    if "row_hash" not in columns:
        return
    others = ", ".join('"' + c.replace('"', '""') + '"' for c in columns if c != "row_hash")
    # rows without one too (kept by an incremental build from before the models had the column): an old
    # batch's row is never rebuilt, and a null hash would hide the erasure from the publication for good
    con.execute(f'UPDATE "{schema}"."{table}" SET row_hash = hash({others})')


def _text_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return con.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c"
        " join information_schema.tables t using (table_catalog, table_schema, table_name)"
        " where t.table_type = 'BASE TABLE' and c.data_type = 'VARCHAR'"
        " and c.table_catalog = current_database() order by 1, 2, 3"
    ).fetchall()


def change_restricted(settings: Settings, raw: ValueChange, pseudonyms: ValueChange) -> int:
    """Rewrite the restricted store without the person's rows (erase) or with them corrected; rows changed."""
    path = restricted.restricted_path(settings)
    if not path.exists():
        return 0
    key = restricted.restricted_key(settings)
    con = duckdb.connect()
    restricted.attach(con, path, key)
    table = f"{restricted.ALIAS}.{restricted.TABLE}"
    rows = con.execute(f"SELECT * FROM {table}").fetch_arrow_table()
    hits = [i for i, ps in enumerate(rows["pseudonym"].to_pylist()) if pseudonyms.holds(ps)]
    if not hits:
        con.close()
        return 0
    work = path.with_name(path.name + ".changing")
    work.unlink(missing_ok=True)
    restricted.attach(con, work, key, read_only=False, alias="changed")
    con.execute(f"CREATE TABLE changed.{restricted.TABLE} AS SELECT * FROM {table} LIMIT 0")
    con.register("kept", _changed_rows(rows, hits, raw, pseudonyms))
    con.execute(f"INSERT INTO changed.{restricted.TABLE} SELECT * FROM kept")
    for kept_table in (restricted.LOADED, restricted.INFO):  # so the next night adds only new batches
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
                       [restricted.ALIAS, kept_table]).fetchone()[0]:  # fmt: skip
            con.execute(f"CREATE TABLE changed.{kept_table} AS SELECT * FROM {restricted.ALIAS}.{kept_table}")
    con.execute("DETACH changed")
    con.close()
    os.chmod(work, 0o600)
    os.replace(work, path)
    return len(hits)


def _changed_rows(rows, hits: list[int], raw: ValueChange, pseudonyms: ValueChange):
    import pyarrow as pa

    if pseudonyms.erasing:
        keep = pa.array([i not in set(hits) for i in range(rows.num_rows)])
        return rows.filter(keep)
    values, keys = rows["value"].to_pylist(), rows["pseudonym"].to_pylist()
    for i in hits:
        values[i] = raw.apply(values[i], identifier_column=True)
        keys[i] = pseudonyms.apply(keys[i], identifier_column=True)
    rows = rows.set_column(rows.column_names.index("value"), "value", pa.array(values, pa.string()))
    return rows.set_column(rows.column_names.index("pseudonym"), "pseudonym", pa.array(keys, pa.string()))
