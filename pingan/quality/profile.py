"""A feed's profile: what its committed days looked like, kept in the lake next to the quality results.

    _quality/profiles/<feed>/load_date=<YYYY-MM-DD>.json     one DayProfile per committed day
    _quality/acceptances/<feed>/load_date=<YYYY-MM-DD>.json  operators' `pingan accept` records (audit)

A DayProfile is computed from what the day committed (its raw-zone rows and its manifest) and nothing
else, so rebuilding the profile from the committed batches gives the same files, and a rerun of a day
replaces that day's entry. The profile of a feed is the set of its day entries; `history` picks the ones
a new delivery is compared with (quality.profile_checks).

Record ids are kept as a deterministic sample of short hashes (all ids of a small day, one in
ID_SAMPLE_MODULUS of a large one), enough to see that a delivery repeats another day's records without
storing identifiers. Value domains are kept for low-cardinality columns that are not personal data.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store
from pingan.quality.profile_input import ProfileInput, from_table

PREFIX = "_quality/profiles"
ACCEPT_PREFIX = "_quality/acceptances"
DOMAIN_MAX_VALUES = 20  # a column with at most this many distinct values keeps them as its domain
DISTINCT_SAMPLE = 20_000  # distinct values are counted among a day's first rows (exactly, cheaply)
ID_SAMPLE_ALL = 2_000  # a day with at most this many record ids keeps them all
ID_SAMPLE_MODULUS = 16  # a larger day keeps the ids whose hash is 0 modulo this
# lineage and bookkeeping columns: the same for every row, or unique per row by construction
NOT_PROFILED = {
    "record_id",
    "source_record_id",
    "jurisdiction_code",
    "source_feed",
    "source_file",
    "source_row",
    "batch_id",
    "load_date",
    "ingested_at",
    "extra_columns",
}


class DayProfile(BaseModel):
    """What one committed day of a feed looked like."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    feed: str
    load_date: date
    batch_id: str
    weekday: int  # 0 = Monday
    rows_read: int
    rows_written: int
    null_share: dict[str, float] = Field(default_factory=dict)  # canonical column -> share of nulls
    distinct: dict[str, int] = Field(default_factory=dict)
    domain: dict[str, list[str]] = Field(default_factory=dict)  # low-cardinality, non-personal columns
    missing_columns: list[str] = Field(default_factory=list)  # spec columns the delivery did not have
    event_column: str | None = None
    event_hour: float | None = None  # mean local time of day of its events (circular), hours
    event_histogram: list[int] = Field(default_factory=list)  # events per local hour of day, 0..23
    event_rows: int = 0
    source_sha256: list[str] = Field(default_factory=list)
    ids_sampled: bool = False  # True: `id_hashes` holds only the ids whose hash is 0 mod ID_SAMPLE_MODULUS
    id_hashes: list[str] = Field(default_factory=list)
    accepted: str | None = None  # the operator's reason, when the day was accepted against its profile
    first_pull: bool = False  # an incremental feed's first load: the source's whole history, not a day


def profile_key(feed: str, day: date) -> str:
    return f"{PREFIX}/{feed}/load_date={day.isoformat()}.json"


def acceptance_key(feed: str, day: date) -> str:
    return f"{ACCEPT_PREFIX}/{feed}/load_date={day.isoformat()}.json"


# --- computing ----------------------------------------------------------------------------------------
def event_column(spec: FeedSpec) -> str | None:
    """The canonical column that says when a row's event happened: declared, or the first mandatory time
    column other than an incremental cursor (a melted feed: its value column), or the cursor itself."""
    if spec.profile.event_column:
        return spec.profile.event_column
    cursor = spec.incremental.cursor_column if spec.incremental else None
    timed = [(s, c) for s, c in spec.columns.items() if c.name and c.type in ("timestamp", "date")]
    for source, col in timed:
        if col.required and source != cursor:
            return col.name
    if spec.melt and spec.melt.type in ("timestamp", "date"):
        return spec.melt.value_column
    return next((c.name for s, c in timed if s == cursor), None)


def day_start(spec: FeedSpec, day: date) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(spec.timezone))


def event_histogram(con, spec: FeedSpec, day: date, column: str) -> list[int]:
    """Events per local hour of day 0..23 (the zone's offset on the logical day; the feeds' zones keep no
    daylight saving). The time of day, not the distance from the logical date: a feed's rows may describe
    events of earlier days (a grid event's stages) while its clock keeps the same daily rhythm."""
    offset = datetime.combine(day, time(12), ZoneInfo(spec.timezone)).utcoffset() or timedelta(0)
    rows = con.execute(
        f"""select ((epoch_us("{column}") + {int(offset.total_seconds() * 1_000_000)}) // 3600000000) % 24,
                  count(*) from batch where "{column}" is not null group by 1"""
    ).fetchall()
    histogram = [0] * 24
    for hour, n in rows:
        histogram[int(hour) % 24] += n
    return histogram


def mean_hour(histogram: list[int]) -> float | None:
    """The circular mean of an hourly histogram (23:00 and 01:00 average to midnight), in hours."""
    if not sum(histogram):
        return None
    angles = [(h + 0.5) * 2 * math.pi / 24 for h in range(24)]
    x = sum(n * math.cos(a) for n, a in zip(histogram, angles, strict=True))
    y = sum(n * math.sin(a) for n, a in zip(histogram, angles, strict=True))
    return round((math.atan2(y, x) * 24 / (2 * math.pi)) % 24, 3)


def sampled(hashes: list[str]) -> list[str]:
    """The hashes kept when a day's ids are sampled (deterministic, the same on every day)."""
    return [h for h in hashes if int(h, 16) % ID_SAMPLE_MODULUS == 0]


def id_hashes(con, rows: int) -> tuple[bool, list[str]]:
    """(sampled?, hex hashes of the record ids): all of a small day, one in ID_SAMPLE_MODULUS of a large
    one. DuckDB's hash (pinned with DuckDB) costs milliseconds where a Python hash per id cost a second."""
    is_sampled = rows > ID_SAMPLE_ALL
    where = f"where h % {ID_SAMPLE_MODULUS} = 0" if is_sampled else ""
    found = con.execute(
        f"""select list(distinct format('{{:016x}}', h) order by format('{{:016x}}', h))
            from (select hash(record_id) h from batch where record_id is not null) {where}"""
    ).fetchone()[0]
    return is_sampled, found or []


def column_stats(spec: FeedSpec, rows: ProfileInput) -> tuple[dict, dict, dict]:
    """Null share of every profiled canonical column, and among the first DISTINCT_SAMPLE rows its distinct
    values and, for a column with few values that is not personal data, the values themselves (its
    domain: shown, not judged; the first rows spare reading every column back)."""
    n = rows.num_rows
    pii = set(spec.pii_columns)
    nulls, distinct, domain = {}, {}, {}
    for name in rows.column_names:
        if name in NOT_PROFILED:
            continue
        nulls[name] = round(rows.null_counts[name] / n, 6) if n else 0.0
        distinct[name] = len(pc.unique(rows.head[name]).drop_null())
        if (
            0 < distinct[name] <= DOMAIN_MAX_VALUES
            and name not in pii
            and pa.types.is_string(rows.type_of(name))
        ):
            domain[name] = sorted(pc.unique(rows.head[name]).drop_null().to_pylist())
    return nulls, distinct, domain


@functools.cache
def _database():
    """One in-memory DuckDB per process, opened on first use."""
    import duckdb

    return duckdb.connect()


def compute_day_profile(
    spec: FeedSpec,
    day: date,
    batch_id: str,
    table: pa.Table | ProfileInput,
    *,
    rows_read: int,
    sources: list[dict],
    missing_columns: list[str],
    accepted: str | None = None,
    first_pull: bool = False,
) -> DayProfile:
    """The profile of one delivery from its canonical rows (the rows it writes) and its manifest facts."""

    rows = table if isinstance(table, ProfileInput) else from_table(table, DISTINCT_SAMPLE)
    nulls, distinct, domain = column_stats(spec, rows)
    column = event_column(spec)
    histogram, is_sampled, hashes = [], False, []
    con = _database().cursor()  # a cursor of one in-memory database: a new database costs 0.1-0.3 s
    try:
        # a date has no hour, and no zone to get wrong
        if column in rows.column_names and rows.num_rows and pa.types.is_timestamp(rows.type_of(column)):
            con.register("batch", pa.table({column: rows.column(column)}))
            histogram = event_histogram(con, spec, day, column)
            con.unregister("batch")
        if "record_id" in rows.column_names and rows.num_rows:
            con.register("batch", pa.table({"record_id": rows.column("record_id")}))
            is_sampled, hashes = id_hashes(con, rows.num_rows)
    finally:
        con.close()
    return DayProfile(
        feed=spec.feed,
        load_date=day,
        batch_id=batch_id,
        weekday=day.weekday(),
        rows_read=rows_read,
        rows_written=rows.num_rows,
        null_share=nulls,
        distinct=distinct,
        domain=domain,
        missing_columns=sorted(missing_columns),
        event_column=column,
        event_hour=mean_hour(histogram) if histogram else None,
        event_histogram=histogram,
        event_rows=sum(histogram),
        source_sha256=sorted({s["sha256"] for s in sources if s.get("sha256")}),
        ids_sampled=is_sampled,
        id_hashes=hashes,
        accepted=accepted,
        first_pull=first_pull,
    )


# --- storing ------------------------------------------------------------------------------------------
def store_day_profile(lake: Store, profile: DayProfile) -> None:
    data = json.dumps(profile.model_dump(mode="json"), ensure_ascii=False, sort_keys=True).encode()
    lake.put_bytes(profile_key(profile.feed, profile.load_date), data, "application/json")


def day_profiles(
    lake: Store, feed: str, near: date | None = None, days: int | None = None
) -> list[DayProfile]:
    """The stored days of a feed's profile, in date order: every one, or those within `days` of `near`
    (chosen by their key names, so a night reads a bounded number of them however long the history)."""
    out = []
    for key in lake.list(f"{PREFIX}/{feed}/"):
        day = _key_date(key)
        if day is None or (near is not None and days is not None and abs((day - near).days) > days):
            continue
        data = lake.get_bytes(key)
        if data is not None:
            out.append(DayProfile.model_validate_json(data))
    return sorted(out, key=lambda p: p.load_date)


def _key_date(key: str) -> date | None:
    name = key.rsplit("/", 1)[-1]
    if not (name.startswith("load_date=") and name.endswith(".json")):
        return None
    try:
        return date.fromisoformat(name[len("load_date=") : -len(".json")])
    except ValueError:
        return None


def history(profiles: list[DayProfile], day: date, days: int) -> list[DayProfile]:
    """The latest `days` committed days before `day`: what a delivery for `day` is compared with."""
    return [p for p in profiles if p.load_date < day][-days:]


def rebuild_profile(lake: Store, spec: FeedSpec) -> list[DayProfile]:
    """Recompute every day of the feed's profile from its committed batches (same result as the loads)."""
    from pingan import raw_zone

    out = []
    for m in raw_zone.committed_manifest_records(lake, spec.feed):
        table = lake.read_parquet(m.files.raw) if m.files.raw else pa.table({})
        acceptance = acceptance_for(lake, spec.feed, m.load_date)
        profile = compute_day_profile(
            spec,
            m.load_date,
            m.batch_id,
            table,
            rows_read=m.rows_read,
            sources=m.sources,
            missing_columns=m.schema_drift.missing_columns,
            accepted=acceptance.reason if acceptance else None,
            first_pull=spec.incremental is not None and m.cursor_before is None,
        )
        store_day_profile(lake, profile)
        out.append(profile)
    return out


# --- acceptances --------------------------------------------------------------------------------------
class Acceptance(BaseModel):
    """An operator's decision that a feed's day is right although its profile says otherwise."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    feed: str
    load_date: date
    reason: str = Field(min_length=10)
    accepted_by: str
    accepted_at: str
    findings: list[str] = Field(default_factory=list)  # what the profile said about the blocked delivery


def record_acceptance(lake: Store, acceptance: Acceptance) -> None:
    """Append the acceptance to the day's record (earlier acceptances of the day are kept)."""
    key = acceptance_key(acceptance.feed, acceptance.load_date)
    existing = json.loads(lake.get_bytes(key) or b"[]")
    existing.append(acceptance.model_dump(mode="json"))
    lake.put_bytes(key, json.dumps(existing, ensure_ascii=False, indent=1).encode(), "application/json")


def acceptance_for(lake: Store, feed: str, day: date) -> Acceptance | None:
    """The latest acceptance of a feed's day, if an operator accepted it."""
    data = lake.get_bytes(acceptance_key(feed, day))
    records = json.loads(data) if data else []
    return Acceptance.model_validate(records[-1]) if records else None
