"""Two warehouse files compared table by table: the proof that an incremental build equals a full refresh.

Used by the tests, the soak and operators (`pingan build --full-refresh` into another file, then compare)."""

from __future__ import annotations

from pathlib import Path

import duckdb

COMPARED_SCHEMAS = ("main", "intermediate")


def tables(path: Path, schemas: tuple[str, ...] = COMPARED_SCHEMAS) -> dict[str, list[str]]:
    """Base tables of the given schemas and their columns."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_type = 'BASE TABLE' and table_schema in {schemas} order by 1, 2"
        ).fetchall()
        return {f"{s}.{t}": [c[0] for c in con.execute(f"describe {s}.{t}").fetchall()] for s, t in rows}


def differences(incremental: Path, full: Path) -> dict[str, tuple[int, int, int, int]]:
    """Per table whose content differs: (rows incremental, rows full, only incremental, only full).

    A table present in one file only, or with other columns, is reported as (-1, -1, -1, -1)."""
    inc_tables, full_tables = tables(incremental), tables(full)
    out = {name: (-1, -1, -1, -1) for name in set(inc_tables) ^ set(full_tables)}
    with duckdb.connect() as con:
        con.execute(f"attach '{incremental}' as inc (read_only)")
        con.execute(f"attach '{full}' as fr (read_only)")
        for name in sorted(set(inc_tables) & set(full_tables)):
            columns = inc_tables[name]
            if sorted(columns) != sorted(full_tables[name]):
                out[name] = (-1, -1, -1, -1)
                continue
            counts = _compare(con, name, columns)
            if counts[2] or counts[3] or counts[0] != counts[1]:
                out[name] = counts
    return out


def _compare(con, name: str, columns: list[str]) -> tuple[int, int, int, int]:
    cols = ", ".join(f'"{c}"' for c in sorted(columns))  # column order may differ after a schema change
    a, b = f"select {cols} from inc.{name}", f"select {cols} from fr.{name}"
    return con.execute(
        f"select (select count(*) from inc.{name}), (select count(*) from fr.{name}), "
        f"(select count(*) from ({a} except all {b})), (select count(*) from ({b} except all {a}))"
    ).fetchone()
