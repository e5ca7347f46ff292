"""What a build reads besides the raw files: tables in schema `raw` of the working file, made before dbt runs.

The warehouse must always equal the raw zone, whose unit of truth is the committed batch (one per feed and
day; a rerun replaces it). So a build works per batch, not per record:

- `raw.batches`: every committed batch. The `int_<entity>s__versions` models mirror exactly these rows;
- `raw.batch_changes`: batches committed since the working file was last built (`added`) and batches the
  lake no longer holds because a rerun replaced them (`removed`);
- `raw.removed_keys`: the entity keys removed batches held, read from the mirror before dbt deletes them,
  so incremental facts recompute those records from what is left (a withdrawn record disappears);
- `raw.feeds`: each feed's spec facts and its freshness against the build's date;
- `raw.code_mappings`: every feed's `code_mapping` from its YAML, so a new feed needs no dbt edit.

`pending_batches` says which batches' files the raw views must expose: only the added ones (the nightly
build reads one new day, not the history), or all of them on a full refresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from pingan.core.canonical import ENTITIES, HARMONISED, TZ
from pingan.core.feed_spec import FeedSpec
from pingan.raw_zone import RawBatch

INTERMEDIATE_SCHEMA = "intermediate"


def versions_table(entity: str) -> str:
    """The dbt model mirroring an entity's committed raw rows (e.g. int_incidents__versions)."""
    return f"int_{entity}s__versions"


def entity_key(entity: str) -> str:
    """The column facts of an entity are keyed on: a grid event gathers many stage rows under event_id."""
    return "event_id" if entity == "grid_event_stage" else "record_id"


@dataclass(frozen=True)
class BatchPlan:
    committed: tuple[RawBatch, ...]
    added: tuple[RawBatch, ...]  # committed, not yet in the working file's mirror
    removed: dict[str, frozenset[str]]  # entity -> batch ids in the mirror the lake no longer commits

    @property
    def pending_files(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for b in self.added:
            out.setdefault(b.entity, []).extend(b.files)
        return out


def plan_batches(
    con: duckdb.DuckDBPyConnection, batches: Iterable[RawBatch], *, full_refresh: bool
) -> BatchPlan:
    committed = tuple(batches)
    mirrored = {} if full_refresh else _mirrored_batches(con)
    committed_ids = {b.batch_id for b in committed}
    added = tuple(b for b in committed if b.batch_id not in mirrored.get(b.entity, set()))
    removed = {e: frozenset(ids - committed_ids) for e, ids in mirrored.items() if ids - committed_ids}
    return BatchPlan(committed, added, removed)


def _mirrored_batches(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entity in ENTITIES:
        table = versions_table(entity)
        if _table_exists(con, INTERMEDIATE_SCHEMA, table):
            rows = con.execute(f"select distinct batch_id from {INTERMEDIATE_SCHEMA}.{table}").fetchall()
            out[entity] = {r[0] for r in rows}
    return out


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def register_batches(con: duckdb.DuckDBPyConnection, plan: BatchPlan) -> None:
    text = pa.string()
    batches = pa.table(
        {
            "batch_id": pa.array([b.batch_id for b in plan.committed], text),
            "source_feed": pa.array([b.feed for b in plan.committed], text),
            "entity": pa.array([b.entity for b in plan.committed], text),
            "jurisdiction_code": pa.array([b.jurisdiction_code for b in plan.committed], text),
            "load_date": pa.array([b.load_date for b in plan.committed], pa.date32()),
            "rows_written": pa.array([b.rows for b in plan.committed], pa.int64()),
            "committed_at": pa.array(
                [datetime.fromisoformat(b.committed_at) if b.committed_at else None for b in plan.committed],
                pa.timestamp("us", tz="UTC"),
            ),
            # a share's lineage (sharing/lineage.py): quarantine counts and the raw files' lake keys
            "rows_quarantined": pa.array([b.rows_quarantined for b in plan.committed], pa.int64()),
            "quarantine_by_rule": pa.array(
                [json.dumps(dict(b.quarantine_by_rule), sort_keys=True) for b in plan.committed], text
            ),
            "raw_keys": pa.array([list(b.raw_keys) for b in plan.committed], pa.list_(text)),
        }
    )
    removed = [(entity, batch_id) for entity, ids in plan.removed.items() for batch_id in sorted(ids)]
    changes = pa.table(
        {
            "batch_id": pa.array([b.batch_id for b in plan.added] + [i for _, i in removed], text),
            "entity": pa.array([b.entity for b in plan.added] + [e for e, _ in removed], text),
            "change": pa.array(["added"] * len(plan.added) + ["removed"] * len(removed), text),
        }
    )
    _replace_table(con, "batches", batches)
    _replace_table(con, "batch_changes", changes)
    con.execute("create or replace table raw.removed_keys (entity varchar, key varchar)")
    for entity, ids in plan.removed.items():
        key, table = entity_key(entity), versions_table(entity)
        con.execute(
            f"insert into raw.removed_keys select distinct ?, {key} from {INTERMEDIATE_SCHEMA}.{table} "
            "where batch_id in (select unnest(?::varchar[]))",
            [entity, sorted(ids)],
        )


def register_feeds(
    con: duckdb.DuckDBPyConnection, specs: dict[str, FeedSpec], batches: Iterable[RawBatch], build_date: date
) -> None:
    """raw.feeds: one row per feed spec, with its freshness for a build of `build_date`."""
    latest: dict[str, date] = {}
    for b in batches:
        latest[b.feed] = max(b.load_date, latest.get(b.feed, b.load_date))
    zone = ZoneInfo(TZ)
    rows = []
    for spec in specs.values():
        last = latest.get(spec.feed)
        lag = (build_date - last).days if last else None
        due = datetime.combine(
            build_date + timedelta(days=1), time.fromisoformat(spec.freshness.deadline), zone
        )
        division = _division(spec.jurisdiction_code)
        rows.append(
            {
                "source_feed": spec.feed,
                "entity": spec.entity,
                "jurisdiction_code": spec.jurisdiction_code,
                "jurisdiction_name": division.name if division else None,
                "province_name": division.province.name if division else None,
                "domain": spec.domain,
                "description": spec.description,
                "latest_load_date": last,
                "build_date": build_date,
                "lag_days": lag,
                "max_lag_days": spec.freshness.max_lag_days,
                "deadline_at": due,
                # never loaded counts as stale: a feed the marts expect is missing
                "is_stale": lag is None or lag > spec.freshness.max_lag_days,
            }
        )
    schema = pa.schema(
        [
            ("source_feed", pa.string()), ("entity", pa.string()), ("jurisdiction_code", pa.string()),
            ("jurisdiction_name", pa.string()), ("province_name", pa.string()), ("domain", pa.string()), ("description", pa.string()), ("latest_load_date", pa.date32()),
            ("build_date", pa.date32()), ("lag_days", pa.int32()), ("max_lag_days", pa.int32()),
            ("deadline_at", pa.timestamp("us", tz=TZ)), ("is_stale", pa.bool_()),
        ]
    )  # fmt: skip
    _replace_table(con, "feeds", pa.Table.from_pylist(rows, schema=schema))


def _division(code: str):
    """The GB/T 2260 county a feed reports for, so a new district's feed names its own jurisdiction."""
    import gb2260

    try:
        return gb2260.get(code)
    except ValueError:
        return None


def register_code_mappings(con: duckdb.DuckDBPyConnection, specs: dict[str, FeedSpec]) -> None:
    """raw.code_mappings: (feed, entity, source code) -> harmonised value, from every feed YAML."""
    rows = [
        {
            "source_feed": spec.feed,
            "entity": spec.entity,
            "harmonised_column": HARMONISED[spec.entity].column,
            "source_code": code,
            "source_label": mapping.label,
            "harmonised_value": mapping.category,
        }
        for spec in specs.values()
        for code, mapping in (spec.code_mapping or {}).items()
    ]
    schema = pa.schema([(n, pa.string()) for n in ("source_feed", "entity", "harmonised_column", "source_code",
                                                    "source_label", "harmonised_value")])  # fmt: skip
    _replace_table(con, "code_mappings", pa.Table.from_pylist(rows, schema=schema))


def _replace_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register("_incoming", table)
    try:
        con.execute(f"create or replace table raw.{name} as select * from _incoming")
    finally:
        con.unregister("_incoming")


# --- what tonight touches in the stored marts -------------------------------------------------------------
# The KPI marts and dim_enterprise are incremental by period (or by USCC): a night recomputes the local
# months its changes touch. A change can move a record out of a month (a withdrawn call, a re-delivery with
# another time), which the facts no longer show once dbt has rebuilt them; so the months the stored rows of
# tonight's keys sit in are read here, before dbt runs. dbt adds the months those keys land in afterwards
# (macros/period_rebuild.sql).
MART_SCHEMA = "main"


@dataclass(frozen=True)
class PeriodSource:
    """How one entity's stored fact places a row in a local month."""

    fact: str
    key: str
    months: tuple[str, ...]  # SQL expressions of the fact's columns giving the month(s) a row counts in


def period_sources(double_report_window_minutes: int = 30) -> dict[str, PeriodSource]:
    """Month expressions per entity; an incident also counts in the months of the incidents within the
    double-report window of it (a new report can make an earlier one a double report, or stop doing so)."""
    window = f"interval {int(double_report_window_minutes)} minute"
    return {
        "incident": PeriodSource(
            "fct_incidents",
            "record_id",
            tuple(f"{_local_month(f'reported_at {op} {window}')}" for op in ("-", "+")),
        ),
        "grid_event_stage": PeriodSource("fct_grid_events", "event_id", ("date_trunc('month', discovered_on)",)),
        "fire_inspection": PeriodSource("fct_fire_inspections", "record_id", ("date_trunc('month', inspected_on)",)),
        "fire_alarm": PeriodSource("fct_fire_alarms", "record_id", ("date_trunc('month', raised_on)",)),
        "joint_operation": PeriodSource(
            "fct_joint_operations", "record_id", ("date_trunc('month', operation_date)",)
        ),
    }  # fmt: skip


def _local_month(instant: str) -> str:
    return f"cast(date_trunc('month', timezone('{TZ}', {instant})) as date)"


@dataclass(frozen=True)
class PreviousBuild:
    """What the working file's last build was made with (None: no previous build in this file)."""

    build_date: date | None
    code_mappings: frozenset[tuple]


def previous_build(con: duckdb.DuckDBPyConnection) -> PreviousBuild:
    """Read before register_feeds / register_code_mappings replace them."""
    if not _table_exists(con, "raw", "feeds"):
        return PreviousBuild(None, frozenset())
    last = con.execute("select max(build_date) from raw.feeds").fetchone()[0]
    mappings = con.execute("select entity, source_feed, source_code, harmonised_value from raw.code_mappings")
    return PreviousBuild(last, frozenset(mappings.fetchall()))


def register_touched(
    con: duckdb.DuckDBPyConnection, plan: BatchPlan, previous: PreviousBuild, build_date: date
) -> None:
    """raw.touched_keys (entity, key): the keys tonight's added and removed batches hold (USCCs for the
    registry), open grid events turning overdue tonight, and every key of an entity whose code mapping
    changed; raw.touched_months (entity, month): the months the stored fact rows of those keys count in,
    plus the months a deadline passing tonight changes."""
    con.execute("create or replace table raw.touched_keys (entity varchar, key varchar)")
    con.execute("create or replace table raw.touched_months (entity varchar, month date)")
    _register_batch_keys(con, plan)
    if _table_exists(con, MART_SCHEMA, "fct_grid_events"):
        # open events whose deadline has passed since they were stored turn overdue tonight without a new
        # row (fct_grid_events re-evaluates the same set)
        as_of = datetime.combine(build_date + timedelta(days=1), time(0), ZoneInfo(TZ)).isoformat()
        con.execute(
            "insert into raw.touched_keys select 'grid_event_stage', event_id from main.fct_grid_events "
            "where not is_closed and not is_overdue and deadline_at <= ?::timestamptz",
            [as_of],
        )
    remapped = _remapped_entities(con, previous)
    for entity, source in period_sources().items():
        if not _table_exists(con, MART_SCHEMA, source.fact):
            continue  # a first build: the marts are built whole
        if entity in remapped:  # a code mapping changed: every key of the entity
            con.execute(
                f"insert into raw.touched_keys select '{entity}', {source.key} from {MART_SCHEMA}.{source.fact}"
            )
        rows = f"{source.key} in (select key from raw.touched_keys where entity = '{entity}')"
        rows += _deadline_rows(entity, previous.build_date, build_date)
        for month in source.months:
            con.execute(
                f"insert into raw.touched_months select distinct '{entity}', {month} "
                f"from {MART_SCHEMA}.{source.fact} where {rows}"
            )


def _register_batch_keys(con: duckdb.DuckDBPyConnection, plan: BatchPlan) -> None:
    """The keys of tonight's added batches (read from their raw files) and of the removed ones."""
    added = {b.entity for b in plan.added}
    for entity in ENTITIES:
        if entity in added:
            column = "upper(trim(uscc))" if entity == "enterprise" else entity_key(entity)
            con.execute(
                f"insert into raw.touched_keys select distinct '{entity}', {column} from raw.{entity}"
            )
    con.execute(
        "insert into raw.touched_keys select entity, key from raw.removed_keys where entity <> 'enterprise'"
    )
    removed_registry = sorted(plan.removed.get("enterprise", ()))
    if removed_registry:  # the registry's dimension is keyed on USCC, not on the raw record_id
        con.execute(
            f"insert into raw.touched_keys select distinct 'enterprise', uscc from {INTERMEDIATE_SCHEMA}."
            f"{versions_table('enterprise')} where batch_id in (select unnest(?::varchar[]))",
            [removed_registry],
        )


def _deadline_rows(entity: str, previous: date | None, build_date: date) -> str:
    """Stored rows whose overdue state the change of build date flips without a new row of theirs (the
    marts judge deadlines as of the build's day): inspections with open hazards whose rectification
    deadline lies between the two build dates. (Grid events turning overdue are touched keys.)"""
    if entity == "fire_inspection" and previous is not None and previous != build_date:
        low, high = sorted((previous, build_date))
        return f" or (open_hazards > 0 and rectification_deadline > '{low}' and rectification_deadline <= '{high}')"
    return ""


def _remapped_entities(con: duckdb.DuckDBPyConnection, previous: PreviousBuild) -> set[str]:
    """Entities with a code mapping added, removed or changed since the working file's last build."""
    if previous.build_date is None:
        return set()
    now = frozenset(
        con.execute(
            "select entity, source_feed, source_code, harmonised_value from raw.code_mappings"
        ).fetchall()
    )
    return {row[0] for row in now ^ previous.code_mappings}
