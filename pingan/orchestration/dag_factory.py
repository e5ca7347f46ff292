"""Airflow DAG shapes built from the feed specs; the files under dags/ only call these.

One ingest DAG per feed (not per jurisdiction), so a late or broken feed is retried, backfilled and
alerted on alone; each emits an Asset whose event carries the load date. The warehouse DAG runs when
every feed's asset is updated, or at the latest feed deadline (`freshness.deadline`) with whatever is
committed by then, so a late feed never holds the night back (the marts flag it as stale).
Tasks call pingan.orchestration.dag_tasks, the same code as the `pingan` CLI; a failed task records an alert.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Asset, AssetAll, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from pingan.core.canonical import TZ
from pingan.core.deployment import check_deployment
from pingan.core.feed_spec import BrokenSpec, FeedSpec, load_spec_set
from pingan.core.settings import load_settings
from pingan.orchestration.dag_tasks import alert_on_failure, alert_on_retry

DEFAULT_ARGS = {
    "retries": int(os.environ.get("PINGAN_TASK_RETRIES", "2")),  # 0 in tests that must see a failure at once
    # shorter only in tests that watch a retry happen
    "retry_delay": timedelta(seconds=float(os.environ.get("PINGAN_TASK_RETRY_DELAY_SECONDS", "300"))),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": alert_on_failure,
    "on_retry_callback": alert_on_retry,  # a night that succeeds only on a retry still says what broke
}


def nightly_timetable(cron: str) -> CronTriggerTimetable:
    """A cron in Asia/Shanghai whose first run is the next one. Airflow's default (`run_immediately=False`)
    still runs the past night when a DAG is unpaused within a tenth of a day of it (here 02:00-04:24), which
    loads tonight's data beside a backfill of an earlier one; a zero window means a past night is always a
    backfill."""
    return CronTriggerTimetable(cron, timezone=TZ, run_immediately=timedelta(0))


def feed_asset(feed: str) -> Asset:
    return Asset(name=f"raw_{feed}", uri=f"pingan://raw/{feed}")


def feed_specs() -> list[FeedSpec]:
    """The feed specs that load (a broken file gets a failing DAG of its own: broken_feed_specs)."""
    settings = load_settings()
    check_deployment(settings)  # prod: a worker missing configuration fails at parse time, listing it all
    return list(load_spec_set(settings.connectors_dir).specs.values())


def broken_feed_specs() -> list[BrokenSpec]:
    return load_spec_set(load_settings().connectors_dir).broken


def deadline_cron(specs: list[FeedSpec]) -> str:
    """The latest of the feeds' deadlines as a daily cron (local time on the day after the data)."""
    hour, minute = max(tuple(map(int, s.freshness.deadline.split(":"))) for s in specs)
    return f"{minute} {hour} * * *"


def warehouse_schedule(specs: list[FeedSpec]) -> AssetOrTimeSchedule:
    return AssetOrTimeSchedule(
        timetable=nightly_timetable(deadline_cron(specs)),
        assets=AssetAll(*(feed_asset(s.feed) for s in specs)),
    )


def ingest_dag(spec: FeedSpec):
    feed = spec.feed

    @dag(
        dag_id=f"ingest_{feed}",
        # no start_date: a DAG first runs at its next scheduled time, never at once for a past night
        # (a past night is a backfill); manual and backfill runs choose their logical dates freely
        schedule=nightly_timetable(spec.schedule),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["pingan", "ingest", spec.domain, spec.jurisdiction_code],
        doc_md=f"Load feed `{feed}` ({spec.description}) for the day before the run into the raw zone.",
    )
    def ingest():
        @task(outlets=[feed_asset(feed)])
        def load(**context) -> dict:
            from pingan.orchestration.dag_tasks import ingest_task

            loaded = ingest_task(feed, context["logical_date"])
            # the warehouse run reads the load date from the asset event (asset runs have no logical date)
            context["outlet_events"][feed_asset(feed)].extra = {"load_date": loaded["load_date"]}
            return loaded

        load()

    return ingest()


def broken_ingest_dag(broken: BrokenSpec):
    """The DAG of a feed whose file does not load: it keeps the feed's DAG id, and every run fails naming
    the file and key (and alerts), while the other feeds' DAGs parse and run."""

    @dag(
        dag_id=f"ingest_{broken.feed}",
        schedule=nightly_timetable("0 2 * * *"),
        catchup=False,
        max_active_runs=1,
        default_args={**DEFAULT_ARGS, "retries": 0},  # a broken file does not mend itself on a retry
        tags=["pingan", "ingest", "broken-spec"],
        doc_md=f"Feed spec `{broken.path}` does not load:\n\n```\n{broken.error}\n```",
    )
    def ingest():
        @task
        def load() -> None:
            from pingan.core.feed_spec import SpecError

            raise SpecError(broken.error)

        load()

    return ingest()


def warehouse_dag(specs: list[FeedSpec]):
    @dag(
        dag_id="warehouse_build_and_publish",
        schedule=warehouse_schedule(specs),
        catchup=False,
        max_active_runs=1,
        default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(hours=3)},
        tags=["pingan", "warehouse", "sharing"],
        doc_md="Build the governance warehouse once every feed has landed (or at the deadline with what has), "
        "then publish partner shares.",
    )
    def warehouse_build_and_publish():
        @task
        def build(**context) -> dict:
            from pingan.orchestration.dag_tasks import build_date_for, build_task

            return build_task(build_date_for(context))

        @task
        def publish(built: dict) -> list[str]:
            from datetime import date

            from pingan.orchestration.dag_tasks import publish_task

            return publish_task(date.fromisoformat(built["build_date"]))

        publish(build())

    return warehouse_build_and_publish()
