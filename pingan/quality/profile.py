"""Each feed's profile: what its committed days looked like, so a new delivery can be judged against them.

One small JSON per committed day under `_quality/profiles/<feed>/<load_date>.json`: rows, weekday, the
null share of every column, the median event time against the logical day, the sources' sha256 and a
sample of record ids. A rerun of a day replaces that day's entry, so the profile always equals what the
committed batches hold. Judging a delivery against it is `pingan.quality.profile_checks`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.canonical import TZ
from pingan.core.storage import Store

PREFIX = "_quality/profiles/"
ACCEPTED = "_quality/accepted/"
ID_SAMPLE = 500
# the column whose spread around the logical day shows a zone mistake; entities without one are skipped
EVENT_TIME = {"incident": "reported_at", "grid_event_stage": "stage_at", "fire_alarm": "raised_at"}
SKIPPED_COLUMNS = {"load_date", "ingested_at", "batch_id", "source_file", "source_row", "extra_columns"}


@dataclass
class DayProfile:
    feed: str
    load_date: str
    weekday: int
    rows: int
    null_share: dict[str, float] = field(default_factory=dict)
    event_offset_hours: float | None = None  # median event time minus the logical day's local midnight
    event_span_hours: float | None = None  # p90 - p10: a catch-up delivery spans more than a day
    source_sha256: list[str] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)


def day_profile(feed: str, entity: str, day: date, table: pa.Table, sources: list[dict]) -> DayProfile:
    """The profile of one delivery's accepted rows (the raw batch) and its sources."""
    null_share = {
        name: round(table[name].null_count / table.num_rows, 4)
        for name in table.column_names
        if name not in SKIPPED_COLUMNS and table.num_rows
    }
    offset, span = _event_offsets(table, EVENT_TIME.get(entity), day)
    ids = table["record_id"].slice(0, ID_SAMPLE).to_pylist() if "record_id" in table.column_names else []
    return DayProfile(
        feed, day.isoformat(), day.weekday(), table.num_rows, null_share, offset, span,
        sorted({s["sha256"] for s in sources if s.get("sha256")}), [i for i in ids if i],
    )  # fmt: skip


def _event_offsets(table: pa.Table, column: str | None, day: date) -> tuple[float | None, float | None]:
    if column is None or column not in table.column_names or table.num_rows == 0:
        return None, None
    midnight = datetime.combine(day, time(), ZoneInfo(TZ))
    seconds = pc.divide(pc.cast(pc.seconds_between(pa.scalar(midnight), table[column]), pa.float64()), 3600.0)
    q = pc.quantile(seconds, q=[0.1, 0.5, 0.9], interpolation="nearest").to_pylist()
    if q[1] is None:
        return None, None
    return round(q[1], 2), round(q[2] - q[0], 2)


def record(lake: Store, profile: DayProfile) -> None:
    key = f"{PREFIX}{profile.feed}/{profile.load_date}.json"
    lake.put_bytes(
        key, json.dumps(asdict(profile), ensure_ascii=False).encode(), "application/json", durable=False
    )


def history(lake: Store, feed: str, before: date, days: int = 56) -> list[DayProfile]:
    """Committed days of the feed before `before` (the day being judged is never its own history)."""
    found = []
    for key in sorted(lake.list(f"{PREFIX}{feed}/"), reverse=True):
        day = key.rsplit("/", 1)[-1].removesuffix(".json")
        if day < before.isoformat() and len(found) < days:
            data = lake.get_bytes(key)
            if data:
                found.append(DayProfile(**json.loads(data)))
    return found


def accept(lake: Store, feed: str, day: date, reason: str, who: str) -> dict:
    """An operator's decision that an unusual delivery is right: its next load commits despite the profile."""
    entry = {"feed": feed, "load_date": day.isoformat(), "reason": reason, "accepted_by": who,
             "accepted_at": datetime.now(ZoneInfo(TZ)).isoformat()}  # fmt: skip
    lake.put_bytes(f"{ACCEPTED}{feed}/{day.isoformat()}.json", json.dumps(entry, ensure_ascii=False).encode())
    return entry


def accepted(lake: Store, feed: str, day: date) -> dict | None:
    data = lake.get_bytes(f"{ACCEPTED}{feed}/{day.isoformat()}.json")
    return json.loads(data) if data else None
