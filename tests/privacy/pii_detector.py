"""A detector for personal data in a DuckDB file: what the analysts' tier must never hold.

It looks at values, not column names: every column of every table and view (any schema) is scanned with the
share guard's rules (pingan.sharing.pii_guard: mobiles and GB 11643 ID numbers by pattern plus python-stdnum's
check, NFKC-normalised, spaced or dashed) and for every person name and exact address the sources hold: the
raw values of the canonical personal-data columns in the lake (what the simulator generated).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from pingan.core.canonical import PERSONAL_DATA
from pingan.core.pseudonym import register_pseudonym_functions
from pingan.sharing.pii_guard import scan

MIN_KNOWN_CHARS = 2
# identifiers the hub makes from a date, a UTC time and random hex (`20250301-015230-845123`): a batch
# loaded before 10:00 UTC whose hex is all digits reads as a landline (0152 30-845123), as can a share
# snapshot's (`20250301-` and 12 hex digits of its content hash); the build's row_hash (a 64-bit hash of the
# row's other columns) can pass a bank card's Luhn check; none is personal data
HUB_IDENTIFIERS = {"batch_id", "quality_result_id", "source_batch_id", "snapshot_id", "row_hash"}


def known_personal_values(lake_dir: Path) -> set[str]:
    """Every raw name, address, phone and ID number in the lake's canonical files (each list element).

    A two-character name can also be a trade name (a person 金昌, and 上海金昌软件科技有限公司): names inside a
    registered enterprise's name (public registry data, kept readable) are left out.
    """
    values = _raw_personal_values(lake_dir)
    trade_names = _enterprise_names(lake_dir)
    return {v for v in values if not any(v in t for t in trade_names)}


def raw_scan(lake_dir: Path, entity: str) -> tuple[duckdb.DuckDBPyConnection, str] | None:
    """A DuckDB session and the name of an entity's raw rows in it, decrypted by pyarrow with the lake key
    (the raw zone is encrypted: pingan/core/lake_crypto.py); None when the entity has no files. `lake_dir`
    is $PINGAN_HOME/lake."""
    from pingan.core.settings import load_settings
    from pingan.core.storage import lake_store

    files = sorted(str(p) for p in (lake_dir / "raw" / entity).rglob("*.parquet"))
    if not files:
        return None
    lake = lake_store(load_settings({"PINGAN_HOME": str(lake_dir.parent)}))
    con = duckdb.connect()
    con.register("raw_rows", lake.read_parquet([lake.key_of(f) for f in files]))
    return con, "raw_rows"


def _enterprise_names(lake_dir: Path) -> list[str]:
    scan = raw_scan(lake_dir, "enterprise")
    if scan is None:
        return []
    con, source = scan
    return [r[0] for r in con.execute(f"select distinct name from {source}").fetchall() if r[0]]


def _raw_personal_values(lake_dir: Path) -> set[str]:
    values: set[str] = set()
    for entity, columns in PERSONAL_DATA.items():
        scan = raw_scan(lake_dir, entity)
        if scan is None:
            continue
        con, source = scan
        names = ", ".join(f'"{c}"' for c in columns)
        for row in con.execute(f"select {names} from {source}").fetchall():
            for value in row:
                for part in (value or "").split(";"):
                    if len(part.strip()) >= MIN_KNOWN_CHARS:
                        values.add(part.strip())
    return values


def relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_catalog = current_database() and table_schema not in ('information_schema', 'pg_catalog')"
        " order by 1, 2"
    ).fetchall()
    return [f'"{s}"."{t}"' for s, t in rows]


def findings(warehouse: Path, known: set[str], hub_key: bytes) -> dict[str, list[str]]:
    """relation -> findings ("column: rule (n rows)"); views are read as a build reads them (key given)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    register_pseudonym_functions(con, hub_key)
    out: dict[str, list[str]] = {}
    for relation in relations(con):
        table: pa.Table = con.execute(f"select * from {relation}").fetch_arrow_table()
        table = table.drop_columns([c for c in table.column_names if c in HUB_IDENTIFIERS])
        hits = scan(table, person_names=known)
        if hits:
            out[relation] = [f"{f.column}: {f.rule} ({f.rows} rows)" for f in hits]
    return out
