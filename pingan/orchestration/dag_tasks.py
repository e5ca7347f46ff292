"""What the Airflow tasks call: thin wrappers that turn a DAG run into a logical date and a pingan call.

A nightly run fired at 02:00 Asia/Shanghai loads the day that just ended, so reruns and backfills load
the day their run stands for, never "now". The warehouse run's day comes from the load dates its
triggering asset events carry, or, when it fires on its deadline instead, from its logical time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pingan.core.canonical import HUB_ZONE
from pingan.core.settings import load_settings
from pingan.core.status import BatchStatus


def load_date_for(run_time: datetime) -> date:
    """The day a nightly run loads: the local calendar day before the run's logical time."""
    # via the epoch: pendulum's astimezone() with a ZoneInfo returned the wrong local day here
    local = datetime.fromtimestamp(run_time.timestamp(), HUB_ZONE)
    return (local - timedelta(days=1)).date()


def ingest_task(feed: str, run_time: datetime) -> dict:
    from pingan.orchestration.pipeline import ingest_day

    settings = load_settings()
    day = load_date_for(run_time)
    (outcome,) = ingest_day(settings, day, feeds=[feed])
    if outcome.status != BatchStatus.COMMITTED:
        # failing the task keeps the asset un-updated, so nothing downstream builds from this batch
        raise RuntimeError(
            f"{feed} {day}: {outcome.status}: {outcome.error or outcome.result.critical_failures}"
        )
    r = outcome.result
    return {
        "feed": feed,
        "load_date": day.isoformat(),
        "batch_id": r.batch_id,
        "rows_written": r.rows_written,
        "rows_quarantined": r.rows_quarantined,
    }


def build_date_for(context: dict) -> date:
    """The logical day of a warehouse run: the latest load date among the asset events that triggered it,
    else (a run fired by the deadline, or a manual run with a logical date) the day before its logical time."""
    events = context.get("triggering_asset_events") or {}
    days = [e.extra["load_date"] for evs in events.values() for e in evs if (e.extra or {}).get("load_date")]
    if days:
        return date.fromisoformat(max(days))
    if context.get("logical_date") is None:
        raise RuntimeError("a warehouse run needs a logical date or triggering asset events with a load_date")
    return load_date_for(context["logical_date"])


def build_task(day: date) -> dict:
    from pingan.orchestration.pipeline import build_warehouse

    result = build_warehouse(load_settings(), build_date=day)
    return {"build_date": day.isoformat(), "mart_rows": getattr(result, "mart_rows", {})}


def publish_task(day: date) -> list[str]:
    from pingan.orchestration.pipeline import publish_shares

    shares = publish_shares(load_settings(), day)
    return [getattr(s, "path", str(s)) for s in shares]


def alert_on_failure(context: dict) -> None:
    """Airflow's on_failure_callback: a structured log line and a record in the lake (`pingan status`)."""
    from pingan.core.storage import lake_store
    from pingan.ops.alerts import alert_from_context, record_alert

    record_alert(lake_store(load_settings()), alert_from_context(context))


def alert_on_retry(context: dict) -> None:
    """Airflow's on_retry_callback: a try that failed is recorded like a failure (kind `retry`), so a night
    that succeeded only on a retry still shows in `pingan status` what broke."""
    from pingan.core.storage import lake_store
    from pingan.ops.alerts import alert_from_context, record_alert

    record_alert(lake_store(load_settings()), alert_from_context(context, kind="retry"))
