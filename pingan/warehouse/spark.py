"""Build the same warehouse with the same dbt models on Apache Spark (dbt-spark, session mode).

When the whole delta joins, one DuckDB file is no longer enough; Spark runs the unchanged models over the
unchanged lake. A build:

1. starts a SparkSession in this process (UI off, bound to 127.0.0.1). Its master is the deployment's
   (`PINGAN_SPARK_MASTER`, `--spark-master`): `local[2]` by default; with a standalone cluster
   (`spark://host:7077`) this process is the driver and the executors, which must reach the lake's and
   the warehouse's paths, run the tasks (tests/warehouse/test_spark_cluster.py);
2. registers the raw zone with the names and columns the DuckDB build gives it: `raw.<entity>` over the
   Parquet files of the batches to build (canonical column order and types, missing columns as typed
   nulls), and `raw.batches`, `raw.batch_changes`, `raw.removed_keys`, `raw.feeds`, `raw.code_mappings`
   with the contents pingan.warehouse.inputs computes (it runs on an in-memory DuckDB, then is copied);
3. runs `dbt seed` and `dbt build --target spark` in-process.

Two ways to keep the result, both Parquet directories (`<schema>.db/<table>/`) under `<home>/spark-warehouse`
that DuckDB, pyarrow or another Spark can read:

- a full rebuild (the default): an empty in-memory catalog over a fresh working directory
  (`spark-warehouse.building`), every batch read, `--full-refresh`; on success the directory replaces
  `spark-warehouse`. A failed build leaves the published one alone;
- incremental (`incremental=True`, `pingan build --engine spark --spark-incremental`): a persistent Derby
  catalog (`<home>/spark-catalog`) over `spark-warehouse` itself. The record of which batches are built is
  the per-batch mirrors (int_<entity>s__versions), as on DuckDB: only batches they lack are read, and
  batches they hold that the lake no longer commits are removed (dbt/macros/cross_db/incremental_on_spark.sql:
  partition overwrite by load date and feed, an explicit DROP PARTITION for a batch nothing replaces). Four
  facts rewrite only the days their touched records fall on (facts_on_spark.sql), the month KPI marts
  the months raw.touched_months names (month_marts_on_spark.sql); fct_grid_events, the other marts and
  the dimensions are whole tables. The first build, or one whose catalog is gone, is
  a full refresh in place. Tables are written in place: after a build that failed midway (mirrors
  updated, facts not), run a full rebuild; the next incremental build then starts over.

The lake is read through local paths or, for an S3 lake, `s3a://` with the Hadoop settings of
`s3a_conf` (README: Spark).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pingan.core.canonical import ENTITIES, PERSONAL_DATA, TZ, entity_schema, local_today
from pingan.core.feed_spec import load_specs
from pingan.core.pseudonym import load_hub_key, pseudonym, pseudonym_list
from pingan.core.settings import S3Settings, Settings
from pingan.core.storage import Store
from pingan.raw_zone import RawBatch
from pingan.raw_zone.retention import reading_batches
from pingan.warehouse.build import RAW_SCHEMA, WarehouseError
from pingan.warehouse.inputs import (
    INTERMEDIATE_SCHEMA,
    PreviousBuild,
    entity_key,
    plan_batches,
    register_touched,
    versions_table,
)

log = logging.getLogger(__name__)

MART_SCHEMA = "main"
SPARK_TYPES = {
    pa.string(): "string",
    pa.int64(): "bigint",
    pa.int32(): "int",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.date32(): "date",
}


@dataclass(frozen=True)
class SparkBuildResult:
    warehouse_dir: Path  # <schema>.db/<table>/ Parquet directories
    models_built: list[str]
    mart_rows: dict[str, int]
    elapsed_seconds: float
    warnings: list[str] = field(default_factory=list)


def build_on_spark(
    settings: Settings,
    batches: list[RawBatch],
    *,
    lake: Store | None = None,
    build_date: date | None = None,
    master: str | None = None,
    progress: Callable[[str], None] | None = None,
    incremental: bool = False,
) -> SparkBuildResult:
    """Build every model and test on Spark from the committed batches; publish the warehouse directory.

    `lake` is where the batches were committed (its batch records feed raw.quality_results; an s3:// lake
    is read through s3a). `master` defaults to the deployment's (PINGAN_SPARK_MASTER, local[2] unset).
    `incremental`: build in place over the persistent catalog, reading only batches not built yet.
    """
    started = time.monotonic()
    master = master or settings.spark_master
    s3 = lake.s3 if lake is not None and lake.scheme == "s3" else None
    if build_date is None:
        build_date = max((b.load_date for b in batches), default=local_today())
    layout = _prepare_layout(settings, incremental)
    leased = reading_batches(lake, [b.batch_id for b in batches], retention=settings.superseded_retention)
    with leased, spark_session(layout.warehouse, master=master, s3=s3, catalog=layout.catalog) as spark:
        mirrored = built_batches(spark, batches) if incremental and layout.catalog_existed else None
        if progress:
            what = "full rebuild" if mirrored is None else "incremental"
            progress(f"spark {spark.version} ({master}, {what}): {len(batches)} committed batches")
        register_raw_zone(spark, settings, batches, build_date, lake=lake, mirrored=mirrored)
        models, test_warnings = _run_dbt(settings, full_refresh=mirrored is None)
        mart_rows = count_mart_rows(spark)
    published = _publish(settings, layout)
    elapsed = time.monotonic() - started
    log.info("spark warehouse %s built in %.1f s: %s", published, elapsed, mart_rows)
    return SparkBuildResult(published, models, mart_rows, elapsed, test_warnings)


@dataclass(frozen=True)
class _Layout:
    warehouse: Path  # where this build writes its tables
    catalog: Path | None  # the persistent Derby catalog (incremental), None for an in-memory one
    catalog_existed: bool  # an incremental build found a catalog from an earlier build


def _prepare_layout(settings: Settings, incremental: bool) -> _Layout:
    published, catalog = spark_warehouse_dir(settings), spark_catalog_dir(settings)
    if incremental:
        existed = (catalog / "metastore_db").is_dir()
        if not existed:  # tables a full rebuild published are in no catalog: start this one from nothing
            shutil.rmtree(published, ignore_errors=True)
        published.mkdir(parents=True, exist_ok=True)
        return _Layout(published, catalog, existed)
    working = published.with_name(published.name + ".building")
    shutil.rmtree(working, ignore_errors=True)
    working.mkdir(parents=True)
    return _Layout(working, None, False)


def _publish(settings: Settings, layout: _Layout) -> Path:
    published = spark_warehouse_dir(settings)
    if layout.catalog is None:
        # the persistent catalog no longer describes the published tables: the next incremental build
        # starts over rather than trust it
        shutil.rmtree(spark_catalog_dir(settings), ignore_errors=True)
        shutil.rmtree(published, ignore_errors=True)
        layout.warehouse.rename(published)
    return published


def build_lake_on_spark(
    settings: Settings,
    *,
    build_date: date | None = None,
    master: str | None = None,
    progress: Callable[[str], None] | None = None,
    incremental: bool = False,
) -> SparkBuildResult:
    """`pingan build --engine spark`: the committed batches of the configured lake."""
    from pingan import raw_zone
    from pingan.core.storage import lake_store

    lake = lake_store(settings)
    batches = raw_zone.committed_batches(lake)
    return build_on_spark(
        settings,
        batches,
        lake=lake,
        build_date=build_date,
        master=master,
        progress=progress,
        incremental=incremental,
    )


def spark_warehouse_dir(settings: Settings) -> Path:
    return settings.home / "spark-warehouse"


def spark_catalog_dir(settings: Settings) -> Path:
    """The Derby metastore of incremental Spark builds (metastore_db/, derby.log)."""
    return settings.home / "spark-catalog"


# --- the session ----------------------------------------------------------------------------------------
def session_conf(warehouse_dir: Path, master: str, catalog: Path | None = None) -> dict[str, str]:
    """A private, loopback-only Spark: no UI; the catalog in memory, or in Derby files under `catalog`."""
    return {
        "spark.master": master,
        "spark.app.name": "pingan-warehouse",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.warehouse.dir": str(warehouse_dir),
        # partition overwrite replaces only the partitions a run writes (the mirrors' load date and feed)
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # same local calendar as the DuckDB build (months and days are Asia/Shanghai)
        "spark.sql.session.timeZone": TZ,
        # instants as Parquet TIMESTAMP(isAdjustedToUTC) rather than legacy INT96: DuckDB reads TIMESTAMPTZ
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # a nightly delta is small: the default 200 shuffle partitions would be 200 tiny tasks per join
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.memory": "2g",
    } | catalog_conf(catalog)


def catalog_conf(catalog: Path | None) -> dict[str, str]:
    """In memory for a full rebuild (the tables' Parquet directories outlive it); Hive's embedded Derby
    metastore in `catalog` for incremental builds, which need last night's tables and partitions."""
    if catalog is None:
        return {"spark.sql.catalogImplementation": "in-memory"}
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={catalog / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={catalog}",
    }


def s3a_conf(s3: S3Settings) -> dict[str, str]:
    """Hadoop settings for reading an s3:// lake on MinIO as s3a:// (needs hadoop-aws on the classpath)."""
    scheme = "https" if s3.secure else "http"
    return {
        "spark.hadoop.fs.s3a.endpoint": f"{scheme}://{s3.endpoint}",
        "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        "spark.hadoop.fs.s3a.access.key": s3.access_key,
        "spark.hadoop.fs.s3a.secret.key": s3.secret_key,
        "spark.hadoop.fs.s3a.path.style.access": "true",  # MinIO serves buckets as paths
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(s3.secure).lower(),
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    }


@contextmanager
def spark_session(
    warehouse_dir: Path,
    *,
    master: str = "local[2]",
    s3: S3Settings | None = None,
    catalog: Path | None = None,
) -> Iterator:
    """A SparkSession for one build, stopped afterwards (dbt-spark's session mode finds it with getOrCreate)."""
    # pyspark warns about pandas 3 on import; the build hands it Arrow tables, never pandas frames
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark.sql import SparkSession  # pyspark is the optional `spark` extra

    # the personal-data UDFs (pseudonymised) run in Python workers that import pingan: this interpreter,
    # unless the deployment names one (a cluster's workers need pingan installed)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in (session_conf(warehouse_dir, master, catalog) | (s3a_conf(s3) if s3 else {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


# --- the raw zone ---------------------------------------------------------------------------------------
def built_batches(spark, batches: list[RawBatch]) -> dict[str, pa.Table] | None:
    """What the mirrors already hold, per entity: (batch_id, key) with the keys only of batches the lake no
    longer commits (raw.removed_keys needs those; of the others only the batch id matters). None when a
    mirror is missing (the first build): then the build is a full refresh."""
    tables = {e: f"{INTERMEDIATE_SCHEMA}.{versions_table(e)}" for e in ENTITIES}
    if not all(spark.catalog.tableExists(t) for t in tables.values()):
        return None
    ids = sorted({b.batch_id for b in batches})
    spark.createDataFrame([(i,) for i in ids], "batch_id string").createOrReplaceTempView("pingan_committed")
    out = {}
    for entity, table in tables.items():
        keys = [entity_key(entity)] + (["uscc"] if entity == "enterprise" else [])  # the registry's key
        gone = ", ".join(f"case when c.batch_id is null then cast(m.{k} as string) end as {k}" for k in keys)
        out[entity] = spark.sql(
            f"select distinct m.batch_id, {gone} from {table} as m "
            "left join pingan_committed as c on m.batch_id = c.batch_id"
        ).toArrow()
    return out


def register_raw_zone(
    spark,
    settings: Settings,
    batches: list[RawBatch],
    build_date: date,
    *,
    lake: Store | None = None,
    mirrored: dict[str, pa.Table] | None = None,
) -> None:
    """raw.<entity> over the files of the batches to build, and every other input table, as on DuckDB.

    The inputs (raw.batches, raw.batch_changes, raw.feeds, raw.quality_results, audit.share_audit_log, ...)
    are made by the DuckDB build's own plan_batches and register_build_inputs on an in-memory DuckDB, then
    copied: one definition for both. `mirrored` (built_batches) stands in for the DuckDB file's mirrors;
    None reads every committed batch (a full refresh).
    """
    from pingan.warehouse.build import register_build_inputs

    specs = load_specs(settings.connectors_dir)
    previous = previous_spark_build(spark) if mirrored is not None else None
    with duckdb.connect() as con:
        con.execute(f"SET TimeZone = '{TZ}'")
        con.execute(f"CREATE SCHEMA {RAW_SCHEMA}")
        if mirrored is not None:
            con.execute(f"CREATE SCHEMA {INTERMEDIATE_SCHEMA}")
            for entity, table in mirrored.items():
                con.register("mirror", table)
                con.execute(f"CREATE TABLE {INTERMEDIATE_SCHEMA}.{versions_table(entity)} AS FROM mirror")
                con.unregister("mirror")
        plan = plan_batches(con, batches, full_refresh=mirrored is None)
        register_build_inputs(con, settings, specs, plan, build_date, lake)
        _save_raw_entities(spark, settings, plan.pending_files, lake)
        if previous is not None:
            register_touched_from_spark(spark, con, plan, previous, build_date)
        relations = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN "
            "('main', 'information_schema', 'pg_catalog', ?) ORDER BY 1, 2",
            [INTERMEDIATE_SCHEMA],
        ).fetchall()
        inputs = {(schema, name): con.execute(f'SELECT * FROM "{schema}"."{name}"').to_arrow_table()
                  for schema, name in relations}  # fmt: skip
    for (schema, name), table in inputs.items():
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
        _save(
            spark.createDataFrame(table) if table.num_rows else _empty_frame(spark, table.schema),
            schema,
            name,
        )


def _save_raw_entities(spark, settings: Settings, files: dict[str, list[str]], lake: Store | None) -> None:
    """raw.<entity> on Spark: the rows of the batches to build, pseudonymised as on DuckDB."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {RAW_SCHEMA}")
    hub_key = load_hub_key(settings)
    for entity in ENTITIES:
        uris = files.get(entity, [])
        # Spark reads Parquet through Hadoop, which needs a KMS for encrypted files: the lake's encrypted
        # raw files are decrypted by pyarrow on the driver instead (fine for a demo; a cluster in production
        # needs a Hadoop KMS, or an unencrypted lake behind access control)
        sealed = {u for u in uris if lake is not None and lake.parquet_is_encrypted(u)}
        decrypted = lake.read_parquet([lake.key_of(u) for u in uris if u in sealed]) if sealed else None
        plain = [spark_uri(u) for u in uris if u not in sealed]
        frame = _entity_frame(spark, entity, plain, decrypted)
        _save(pseudonymised(frame, entity, hub_key), RAW_SCHEMA, entity)


# The stored facts' columns inputs.register_touched reads (keys, the dates giving a row's months, deadlines)
TOUCHED_FACT_COLUMNS = {
    "fct_incidents": ("record_id", "reported_at"),
    "fct_grid_events": ("event_id", "discovered_on", "is_closed", "is_overdue", "deadline_at"),
    "fct_fire_inspections": ("record_id", "inspected_on", "open_hazards", "rectification_deadline"),
    "fct_fire_alarms": ("record_id", "raised_on"),
    "fct_joint_operations": ("record_id", "operation_date"),
}


def previous_spark_build(spark) -> PreviousBuild:
    """What the catalog's last build was made with: read before this build's inputs replace raw.feeds and
    raw.code_mappings (inputs.previous_build on the DuckDB file)."""
    if not spark.catalog.tableExists(f"{RAW_SCHEMA}.feeds"):
        return PreviousBuild(None, frozenset())
    last = spark.sql(f"select max(build_date) from {RAW_SCHEMA}.feeds").collect()[0][0]
    mappings = spark.sql(
        f"select entity, source_feed, source_code, harmonised_value from {RAW_SCHEMA}.code_mappings"
    ).collect()
    return PreviousBuild(last, frozenset(tuple(row) for row in mappings))


def register_touched_from_spark(spark, con, plan, previous: PreviousBuild, build_date: date) -> None:
    """raw.touched_keys and raw.touched_months on the in-memory DuckDB, by the DuckDB build's own
    register_touched, over what it reads copied from Spark: tonight's keys of raw.<entity> and the
    stored facts' columns of TOUCHED_FACT_COLUMNS (the month marts rewrite those months)."""
    added = sorted({b.entity for b in plan.added})
    for entity in added:
        column = "uscc" if entity == "enterprise" else entity_key(entity)
        _copy_to_duckdb(
            con, spark.sql(f"select distinct {column} from {RAW_SCHEMA}.{entity}"), RAW_SCHEMA, entity
        )
    for fact, columns in TOUCHED_FACT_COLUMNS.items():
        if spark.catalog.tableExists(f"{MART_SCHEMA}.{fact}"):
            _copy_to_duckdb(con, spark.table(f"{MART_SCHEMA}.{fact}").select(*columns), MART_SCHEMA, fact)
    register_touched(con, plan, previous, build_date)
    for entity in added:  # Spark has its own raw.<entity>; only the touched tables are copied back
        con.execute(f"DROP TABLE {RAW_SCHEMA}.{entity}")


def _copy_to_duckdb(con, frame, schema: str, name: str) -> None:
    con.register("spark_frame", frame.toArrow())
    con.execute(f'CREATE TABLE "{schema}"."{name}" AS FROM spark_frame')
    con.unregister("spark_frame")


def pseudonymised(frame, entity: str, hub_key: bytes):
    """The personal-data columns as the hub's keyed pseudonyms, exactly as the DuckDB raw views make them."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    udfs = {
        "pseudonym": F.udf(lambda v: pseudonym(hub_key, v), StringType()),
        "pseudonym_list": F.udf(lambda v: pseudonym_list(hub_key, v), StringType()),
    }
    for column, treatment in PERSONAL_DATA.get(entity, {}).items():
        frame = frame.withColumn(column, udfs[treatment](F.col(column)))
    return frame


def _entity_frame(spark, entity: str, uris: list[str], decrypted: pa.Table | None = None):
    """Exactly the canonical columns in canonical order; a column no file has reads as a typed null.
    `decrypted`: rows of encrypted files, already read (the driver decrypted them)."""
    from pyspark.sql import functions as F

    schema = entity_schema(entity)
    frames = [spark.read.option("mergeSchema", "true").parquet(*uris)] if uris else []
    if decrypted is not None and decrypted.num_rows:
        frames.append(spark.createDataFrame(decrypted))
    if not frames:
        return _empty_frame(spark, schema)
    frame = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1], allowMissingColumns=True)
    present = set(frame.columns)
    return frame.select(
        [
            (F.col(f.name) if f.name in present else F.lit(None)).cast(spark_type(f.type)).alias(f.name)
            for f in schema
        ]
    )


def _empty_frame(spark, schema: pa.Schema):
    ddl = ", ".join(f"`{f.name}` {spark_type(f.type)}" for f in schema)
    return spark.createDataFrame([], ddl)


def _save(frame, schema: str, name: str) -> None:
    frame.write.mode("overwrite").format("parquet").saveAsTable(f"{schema}.{name}")


def spark_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz else "timestamp_ntz"
    if pa.types.is_list(arrow_type):  # raw.batches.raw_keys
        return f"array<{spark_type(arrow_type.value_type)}>"
    if arrow_type not in SPARK_TYPES:
        raise WarehouseError(f"no Spark type for canonical Arrow type {arrow_type}")
    return SPARK_TYPES[arrow_type]


def spark_uri(uri: str) -> str:
    """The raw zone's URIs as Hadoop spells them: s3:// objects through the s3a connector."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


# --- dbt ------------------------------------------------------------------------------------------------
def _run_dbt(settings: Settings, *, full_refresh: bool) -> tuple[list[str], list[str]]:
    from pingan.warehouse.build import invoke_dbt  # one place decides what a failed dbt command is

    target_dir = settings.home / "dbt-spark"
    common = [
        "--project-dir", str(settings.dbt_dir),
        "--profiles-dir", str(settings.dbt_dir),
        "--target-path", str(target_dir / "target"),
        "--log-path", str(target_dir / "logs"),
        "--target", "spark",
    ]  # fmt: skip
    invoke_dbt(["seed", *common, "--full-refresh"])
    # unit tests check the models' logic on fixed inputs, written in DuckDB's SQL: the DuckDB build runs them
    refresh = ["--full-refresh"] if full_refresh else []
    results = invoke_dbt(["build", *common, "--exclude-resource-type", "seed", "unit_test", *refresh])
    models = [r.node.name for r in results if r.node.resource_type == "model" and str(r.status) == "success"]
    warned = [
        f"{r.node.resource_type} {r.node.name}: {r.message or r.failures}"
        for r in results
        if str(r.status) == "warn"
    ]
    for text in warned:
        log.warning("dbt (spark): %s", text)
    return models, warned


def count_mart_rows(spark) -> dict[str, int]:
    tables = [
        t.name for t in spark.catalog.listTables(MART_SCHEMA) if t.tableType != "VIEW" and not t.isTemporary
    ]
    return {t: spark.table(f"{MART_SCHEMA}.{t}").count() for t in sorted(tables)}
