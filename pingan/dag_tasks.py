"""What the Airflow tasks call: thin wrappers that turn a DAG run into a logical date and a pingan call.

A nightly run fired at 02:00 Asia/Shanghai loads the day that just ended, so reruns and backfills load
the day their run stands for, never "now".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pingan.settings import load_settings

TZ = ZoneInfo("Asia/Shanghai")


def load_date_for(run_time: datetime) -> date:
    """The day a nightly run loads: the local calendar day before the run's logical time."""
    # via the epoch: pendulum's astimezone() with a ZoneInfo returned the wrong local day here
    local = datetime.fromtimestamp(run_time.timestamp(), TZ)
    return (local - timedelta(days=1)).date()


def ingest_task(feed: str, run_time: datetime) -> dict:
    from pingan.pipeline import ingest_day

    settings = load_settings()
    day = load_date_for(run_time)
    (outcome,) = ingest_day(settings, day, feeds=[feed])
    if outcome.status != "committed":
        # failing the task keeps the asset un-updated, so nothing downstream builds from this batch
        raise RuntimeError(f"{feed} {day}: {outcome.status}: {outcome.error or outcome.result.critical_failures}")
    r = outcome.result
    return {"feed": feed, "load_date": day.isoformat(), "batch_id": r.batch_id, "rows_written": r.rows_written,
            "rows_quarantined": r.rows_quarantined}


def build_task() -> dict:
    from pingan.pipeline import build_warehouse

    result = build_warehouse(load_settings())
    return {"mart_rows": getattr(result, "mart_rows", {})}


def publish_task(run_time: datetime) -> list[str]:
    from pingan.pipeline import publish_shares

    shares = publish_shares(load_settings(), load_date_for(run_time))
    return [getattr(s, "path", str(s)) for s in shares]
