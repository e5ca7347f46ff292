"""Build the shared governance warehouse with dbt, and publish it only when the whole build succeeded.

Analysts read `settings.warehouse_path`; nothing writes that file in place. A build:

1. picks the working file: the published path is a symlink to one of two files that take turns
   (pingan/warehouse/slots.py), and the build writes the other one, so incremental models keep their
   history without copying the published file (a full refresh starts from an empty file instead);
2. compares the committed batches it is given with the batches the working file already mirrors
   (pingan.warehouse.inputs), and creates one table per canonical entity in schema `raw` from the files
   of the batches not yet mirrored (decrypted by pyarrow, every column cast to its canonical type,
   personal data as keyed pseudonyms), beside tables of batches, withdrawn keys, feed freshness and code
   mappings (without a lake, in tests, `raw.*` are views over the files instead);
3. runs `dbt seed` and `dbt build` in-process against the working file;
4. on success, checkpoints the working file and points the published symlink at it with `os.replace`. A
   reader holding the old file open keeps reading it until it reconnects.

On failure the working file is set aside (`<name>.<slot>.failed.duckdb`) for inspection and the published
file is untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pingan.core.audit import register_warehouse_view
from pingan.core.canonical import ENTITIES, PERSONAL_DATA, TZ, entity_schema, local_today
from pingan.core.environment import temporary_env
from pingan.core.feed_spec import load_specs
from pingan.core.pseudonym import (
    HUB_KEY_FILE_ENV,
    LIST_UDF_NAME,
    UDF_NAME,
    hub_key_path,
    load_hub_key,
    register_pseudonym_functions,
)
from pingan.core.settings import S3Settings, Settings
from pingan.core.storage import Store
from pingan.quality.results_table import register_quality_results
from pingan.raw_zone import RawBatch
from pingan.raw_zone.retention import reading_batches
from pingan.warehouse.inputs import (
    plan_batches,
    previous_build,
    register_batches,
    register_code_mappings,
    register_feeds,
    register_touched,
)
from pingan.warehouse.seed_state import record_seeds, seed_fingerprint, seeds_current
from pingan.warehouse.slots import Slots
from pingan.warehouse.slots import discard as slots_discard
from pingan.warehouse.slots import prepare as slots_prepare
from pingan.warehouse.slots import publish as slots_publish

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
MEMORY_ENV, THREADS_ENV = "PINGAN_DUCKDB_MEMORY_LIMIT", "PINGAN_DUCKDB_THREADS"
MART_SCHEMA = "main"  # marts are in the default schema: analysts write `from fct_incidents`
DB_PATH_ENV = "PINGAN_DBT_DB_PATH"


class WarehouseError(RuntimeError):
    """A build that did not publish; the message names the failing models and tests."""


@dataclass(frozen=True)
class BuildResult:
    warehouse_path: Path
    models_built: list[str]
    mart_rows: dict[str, int]  # mart table -> rows
    elapsed_seconds: float
    warnings: list[str] = field(default_factory=list)  # tests that warned, e.g. unmapped category codes
    stale_feeds: list[str] = field(default_factory=list)  # feeds behind the build date (mart_feed_freshness)
    seeds_loaded: bool = True  # False: the seeds had not changed since this file last loaded them
    stage_seconds: dict[str, float] = field(default_factory=dict)  # inputs, seed, dbt build, finish, publish


def build(
    settings: Settings,
    batches: list[RawBatch],
    *,
    lake: Store | None = None,
    full_refresh: bool = False,
    select: str | None = None,
    build_date: date | None = None,
    progress: Callable[[str], None] | None = None,
    before_dbt: Callable[[], None] | None = None,
) -> BuildResult:
    """Build the warehouse from every committed raw batch and publish it.

    `batches` is the whole truth (raw_zone.committed_batches): batches the working file holds but the list
    lacks are withdrawn from the warehouse. They are read from start to end as given: the build holds a
    lease on them in the lake, so a rerun that supersedes one meanwhile leaves its files in place
    (pingan/raw_zone/retention.py). `build_date` (default: the latest load date) is the logical day feed
    freshness is judged against. `before_dbt()` runs between registering the inputs and running dbt (a
    test's hook, e.g. to rerun a day there).
    """
    started = time.monotonic()
    unknown = sorted({b.entity for b in batches} - set(ENTITIES))
    if unknown:
        raise WarehouseError(f"batches name unknown entities {unknown}; known: {', '.join(ENTITIES)}")
    if build_date is None:
        build_date = max((b.load_date for b in batches), default=local_today())
    specs = load_specs(settings.connectors_dir)
    published = settings.warehouse_path
    published.parent.mkdir(parents=True, exist_ok=True)
    slots = Slots(published)
    leased = reading_batches(lake, [b.batch_id for b in batches], retention=settings.superseded_retention)
    stages: dict[str, float] = {}
    with leased, _build_lock(published):
        working = slots_prepare(slots, full_refresh=full_refresh)
        try:
            results, mart_rows, stale, warnings, seeded = _build_in(
                working, settings, specs, batches, lake=lake, full_refresh=full_refresh, select=select,
                build_date=build_date, progress=progress, before_dbt=before_dbt, stages=stages,
            )  # fmt: skip
        except BaseException:
            slots_discard(slots, working)
            raise
        with _timed(stages, "publish"):
            slots_publish(slots, working)
    elapsed = time.monotonic() - started
    log.info("published %s in %.1f s: %s", published, elapsed, mart_rows)
    return BuildResult(
        warehouse_path=published,
        models_built=results.models_built,
        mart_rows=mart_rows,
        elapsed_seconds=elapsed,
        warnings=warnings,
        stale_feeds=stale,
        seeds_loaded=seeded,
        stage_seconds=stages,
    )


@contextlib.contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    """Adds the block's wall time to stages[name] (BuildResult.stage_seconds; bench/bench_warehouse.py)."""
    start = time.monotonic()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.monotonic() - start


def _build_in(
    working: Path,
    settings: Settings,
    specs: dict,
    batches: list[RawBatch],
    *,
    lake: Store | None,
    full_refresh: bool,
    select: str | None,
    build_date: date,
    progress: Callable[[str], None] | None,
    before_dbt: Callable[[], None] | None = None,
    stages: dict[str, float] | None = None,
) -> tuple[_DbtResults, dict[str, int], list[str], list[str], bool]:
    """Bring the working file up to the committed batches and run dbt in it; what it built and warned,
    and whether it loaded the seeds."""
    s3_lake = lake is not None and lake.scheme == "s3"
    seeds = seed_fingerprint(settings.dbt_dir)
    stages = {} if stages is None else stages
    with _timed(stages, "inputs"), duckdb.connect(str(working)) as con:
        load_seeds = full_refresh or not seeds_current(con, seeds)
        con.execute(f"SET TimeZone = '{TZ}'")
        if s3_lake:
            # the secret lets the views below be described; installing httpfs from the wheel lets
            # dbt's `extensions: [httpfs]` load it later without the network
            lake.duckdb_setup(con)
        plan = plan_batches(con, batches, full_refresh=full_refresh)
        register_pseudonym_functions(con, load_hub_key(settings))  # the raw views call them
        create_raw_views(con, plan.pending_files, lake)
        previous = previous_build(con)  # before the inputs below replace what it was built with
        register_build_inputs(con, settings, specs, plan, build_date, lake)
        register_touched(con, plan, previous, build_date)
    if progress:
        progress(f"dbt: {len(plan.added)} new batches, {sum(map(len, plan.removed.values()))} withdrawn")
    if before_dbt is not None:
        before_dbt()
    s3 = lake.s3 if s3_lake else None
    results = _run_dbt(
        settings, working, s3=s3, full_refresh=full_refresh, select=select, load_seeds=load_seeds,
        stages=stages,
    )  # fmt: skip
    with _timed(stages, "finish"), duckdb.connect(str(working)) as con:
        record_seeds(con, seeds)
        mart_rows = _count_mart_rows(con)
        stale = _stale_feeds(con)
        warnings = [_with_stored_failures(con, w) for w in results.warnings]
        con.execute("CHECKPOINT")  # everything in the main file: readers open it without a WAL
    return results, mart_rows, stale, warnings, load_seeds


def register_build_inputs(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    specs: dict,
    plan,
    build_date: date,
    lake: Store | None,
) -> None:
    """Every table and view dbt reads besides raw.<entity> (the Spark build copies the same ones)."""
    register_warehouse_view(con, settings)  # audit.share_audit_log: the sharing audit trail
    register_batches(con, plan)
    register_feeds(con, specs, plan.committed, build_date)
    register_code_mappings(con, specs)
    register_quality_results(con, lake)


# --- raw views ------------------------------------------------------------------------------------------
def create_raw_views(
    con: duckdb.DuckDBPyConnection, raw_files: dict[str, list[str]], lake: Store | None = None
) -> None:
    """(Re)create raw.<entity> for every canonical entity, in exactly the canonical column order and types.

    Columns missing from every file (an older canonical schema) read as typed nulls; unexpected columns
    are not exposed. An entity without files is an empty view, so models over it still build.

    With the `lake` the files came from, raw.<entity> is a table of the files' rows, read and decrypted by
    pyarrow (the raw zone is encrypted: pingan/core/lake_crypto.py) and pseudonymised on the way in: DuckDB
    1.5.5 reads pyarrow's encrypted files only without any filter pushed into the scan, which a build
    cannot promise. Without a lake (tests over plain files) it is a view over the files.
    """
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for entity in ENTITIES:
        uris = raw_files.get(entity) or []
        _drop_relation(con, RAW_SCHEMA, entity)
        if lake is not None and uris:
            _load_raw_table(con, entity, uris, lake)
            continue
        if uris:
            # the raw zone's key=value folders are layout, not columns: the files carry every lineage column
            scan = f"read_parquet({_sql_list(uris)}, union_by_name = true, hive_partitioning = false)"
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        else:
            scan, present = "(SELECT 1) AS no_files WHERE false", set()
        con.execute(
            f"CREATE VIEW {RAW_SCHEMA}.{entity} AS\nSELECT\n    {_raw_columns(entity, present)}\nFROM {scan}"
        )


def _raw_columns(entity: str, present: set[str]) -> str:
    treatments = PERSONAL_DATA.get(entity, {})
    return ",\n    ".join(
        _column_expr(f.name, duckdb_type(f.type), f.name in present, treatments.get(f.name))
        for f in entity_schema(entity)
    )


def _load_raw_table(con: duckdb.DuckDBPyConnection, entity: str, uris: list[str], lake: Store) -> None:
    """raw.<entity> as a table: one file at a time (memory bounded by a file), decrypted by pyarrow."""
    for i, uri in enumerate(uris):
        table = lake.read_parquet(lake.key_of(uri))
        select = f"SELECT {_raw_columns(entity, set(table.column_names))} FROM _raw_file"
        con.register("_raw_file", table)
        try:
            if i == 0:
                con.execute(f"CREATE TABLE {RAW_SCHEMA}.{entity} AS {select}")
            else:
                con.execute(f"INSERT INTO {RAW_SCHEMA}.{entity} {select}")
        finally:
            con.unregister("_raw_file")


def _drop_relation(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop a table or view (a build may find either from the previous one)."""
    kinds = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()
    for (kind,) in kinds:
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {schema}.{_ident(name)}")


def _column_expr(name: str, sql_type: str, present: bool, treatment: str | None) -> str:
    """One raw-view column: the canonical cast, through the keyed pseudonym for personal data."""
    value = f"CAST({_ident(name) if present else 'NULL'} AS {sql_type})"
    if treatment == "pseudonym":
        value = f"{UDF_NAME}({value})"
    elif treatment == "pseudonym_list":
        value = f"{LIST_UDF_NAME}({value})"
    elif name == "extra_columns" and present:
        # unexpected source columns may hold anything, personal data included: the names, not the values
        value = f"CAST(to_json(json_keys(TRY_CAST({value} AS JSON))) AS VARCHAR)"
    return f"{value} AS {_ident(name)}"


def duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    simple = {
        pa.string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
    }
    if arrow_type not in simple:
        raise WarehouseError(f"no DuckDB type for canonical Arrow type {arrow_type}")
    return simple[arrow_type]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- dbt ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Warning:
    text: str
    failures_relation: str | None  # table holding the failing rows when the test stores its failures


@dataclass(frozen=True)
class _DbtResults:
    models_built: list[str]
    warnings: list[_Warning]


def _run_dbt(
    settings: Settings,
    db_path: Path,
    *,
    s3: S3Settings | None,
    full_refresh: bool,
    select: str | None,
    load_seeds: bool = True,
    stages: dict[str, float] | None = None,
) -> _DbtResults:
    common = [
        "--project-dir", str(settings.dbt_dir),
        "--profiles-dir", str(settings.dbt_dir),
        "--target-path", str(settings.home / "dbt" / "target"),
        "--log-path", str(settings.home / "dbt" / "logs"),
        "--target", settings.dbt_target,
    ]  # fmt: skip
    build_args = ["build", *common, "--exclude-resource-type", "seed"]
    if full_refresh:
        build_args.append("--full-refresh")
    else:  # unit tests check the models' SQL, not the data: the full refresh and CI run them
        build_args += ["--exclude-resource-type", "unit_test"]
    if select:
        build_args += ["--select", select]
    # dbt's connections register the pseudonym functions (pingan.warehouse.dbt_pii_plugin) with the hub key
    # read again from its file; the key itself never goes through the environment or into the warehouse
    env = {DB_PATH_ENV: str(db_path), HUB_KEY_FILE_ENV: str(hub_key_path(settings))} | duckdb_resources()
    if s3 is not None:  # profiles.yml's s3 target reads the lake's secret from these
        env |= {
            "PINGAN_S3_ENDPOINT": s3.endpoint,
            "PINGAN_S3_ACCESS_KEY": s3.access_key,
            "PINGAN_S3_SECRET_KEY": s3.secret_key,
            "PINGAN_S3_SECURE": str(s3.secure).lower(),
            "PINGAN_S3_REGION": s3.region,
        }
    stages = {} if stages is None else stages
    with temporary_env(**env):
        if load_seeds:
            with _timed(stages, "seed"):
                invoke_dbt(["seed", *common, *(["--full-refresh"] if full_refresh else [])])
        with _timed(stages, "dbt build"):
            results = invoke_dbt(build_args)
    models = [r.node.name for r in results if r.node.resource_type == "model" and str(r.status) == "success"]
    warnings = [
        _Warning(
            f"{r.node.resource_type} {r.node.name}: {_message(r)}", getattr(r.node, "relation_name", None)
        )
        for r in results
        if str(r.status) == "warn"
    ]
    return _DbtResults(models_built=models, warnings=warnings)


def duckdb_resources() -> dict[str, str]:
    """DuckDB's memory limit and threads for the build, from this machine unless set in the environment:
    a quarter of the memory, at most 640 MB (the night's build must stay under 1 GB peak RSS with dbt's
    own objects beside it), and the cores there are. profiles.yml reads them."""
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    memory = os.environ.get(MEMORY_ENV) or f"{max(256, min(total // 4, 640))}MB"
    threads = os.environ.get(THREADS_ENV) or str(os.cpu_count() or 1)
    return {MEMORY_ENV: memory, THREADS_ENV: threads}


def invoke_dbt(args: list[str]) -> list:
    """Run one dbt command in-process; its results, or WarehouseError naming what failed."""
    from dbt.cli.main import dbtRunner  # dbt costs seconds to import; keep it off the CLI's start-up path

    command = args[0]
    # dbt's console output is for -v; its full log is always written under --log-path
    quiet = [] if log.isEnabledFor(logging.INFO) else ["--quiet"]
    try:
        res = dbtRunner().invoke([*quiet, *args])
    finally:
        _close_dbt_duckdb()
    if res.exception is not None:
        raise WarehouseError(f"dbt {command} did not run: {res.exception}") from res.exception
    results = list(getattr(res.result, "results", None) or [])
    failed = [r for r in results if str(r.status) in ("error", "fail", "runtime error")]
    if failed or not res.success:
        details = "; ".join(f"{r.node.resource_type} {r.node.name}: {_message(r)}" for r in failed)
        log_file = Path(args[args.index("--log-path") + 1]) / "dbt.log"
        raise WarehouseError(
            f"dbt {command} failed, warehouse not published: {details or 'see'} ({log_file})"
        )
    return results


def _message(result) -> str:
    msg = result.message or ""
    if not msg and getattr(result, "failures", None):
        msg = f"{result.failures} failing rows"
    return " ".join(str(msg).split())[:500]


def _close_dbt_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open between invocations.

    dbt-duckdb caches its connection in a class attribute for the life of the process. Left open, it
    would hold the working file's lock after os.replace (so readers could not open the published file)
    and the next build in this process would write through it into the published file.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


# --- files ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _build_lock(published: Path) -> Iterator[None]:
    """One build at a time per warehouse: both would write the same working file."""
    lock_path = published.with_name(f"{published.name}.build.lock")
    with open(lock_path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WarehouseError(f"another build of {published} is running (lock {lock_path})") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _with_stored_failures(con: duckdb.DuckDBPyConnection, warning: _Warning, limit: int = 10) -> str:
    """The warning, plus the first failing rows when the test stored them (e.g. the unmapped codes)."""
    text = warning.text
    if warning.failures_relation:
        cur = con.execute(f"SELECT * FROM {warning.failures_relation} LIMIT {limit}")
        names = [d[0] for d in cur.description]
        rows = [", ".join(f"{n}={v}" for n, v in zip(names, row, strict=True)) for row in cur.fetchall()]
        text += f" [in {warning.failures_relation}: " + "; ".join(rows) + "]"
    log.warning("dbt: %s", text)
    return text


def _stale_feeds(con: duckdb.DuckDBPyConnection) -> list[str]:
    try:
        rows = con.execute(
            f"select source_feed from {MART_SCHEMA}.mart_feed_freshness where is_stale order by 1"
        )
    except duckdb.CatalogException:  # a build restricted with --select may not have made it
        return []
    return [r[0] for r in rows.fetchall()]


def _count_mart_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'"
        " ORDER BY table_name",
        [MART_SCHEMA],
    ).fetchall()
    return {
        t: con.execute(f"SELECT count(*) FROM {MART_SCHEMA}.{_ident(t)}").fetchone()[0] for (t,) in tables
    }
