"""Seeds load only when they changed: a nightly build skips `dbt seed` when the working file already holds
the seeds of the same files.

The fingerprint covers every file under the dbt project's `seeds/` and `dbt_project.yml` (seed column
types live there). It is kept in the working file itself (`_pingan.seed_state`), so each of the two
files that take turns (warehouse/slots.py) knows what it holds; a full refresh starts from an empty file
and always seeds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

STATE_SCHEMA = "_pingan"  # bookkeeping of the build, apart from the models analysts and engines compare
STATE_TABLE = f"{STATE_SCHEMA}.seed_state"


def seed_fingerprint(dbt_dir: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in (dbt_dir / "seeds").rglob("*") if p.is_file())
    for path in [*files, dbt_dir / "dbt_project.yml"]:
        digest.update(str(path.relative_to(dbt_dir)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def seeds_current(con: duckdb.DuckDBPyConnection, fingerprint: str) -> bool:
    """The working file holds the seeds of exactly these files."""
    try:
        row = con.execute(f"select fingerprint from {STATE_TABLE}").fetchone()
    except duckdb.CatalogException:
        return False
    return row is not None and row[0] == fingerprint


def record_seeds(con: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(f"create or replace table {STATE_TABLE} as select ? as fingerprint", [fingerprint])
