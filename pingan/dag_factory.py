"""Airflow DAG shapes built from the feed specs; the files under dags/ only call these.

One ingest DAG per feed (not per jurisdiction), so a late or broken feed is retried, backfilled and
alerted on alone; each emits an Asset, and the warehouse DAG runs when the feeds' assets are updated.
Tasks call pingan.dag_tasks, the same code as the `pingan` CLI.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from pingan.feed_spec import FeedSpec, load_specs
from pingan.settings import load_settings

START = pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai")
DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=2),
}


def feed_asset(feed: str) -> Asset:
    return Asset(name=f"raw_{feed}", uri=f"pingan://raw/{feed}")


def feed_specs() -> list[FeedSpec]:
    return list(load_specs(load_settings().connectors_dir).values())


def ingest_dag(spec: FeedSpec):
    feed = spec.feed

    @dag(
        dag_id=f"ingest_{feed}",
        schedule=spec.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["pingan", "ingest", spec.domain, spec.jurisdiction_code],
        doc_md=f"Load feed `{feed}` ({spec.description}) for the day before the run into the raw zone.",
    )
    def ingest():
        @task(outlets=[feed_asset(feed)])
        def load(**context) -> dict:
            from pingan.dag_tasks import ingest_task

            return ingest_task(feed, context["logical_date"])

        load()

    return ingest()


def warehouse_dag(specs: list[FeedSpec]):
    @dag(
        dag_id="warehouse_build_and_publish",
        schedule=[feed_asset(s.feed) for s in specs],
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(hours=3)},
        tags=["pingan", "warehouse", "sharing"],
        doc_md="Build the governance warehouse once every feed has landed, then publish partner shares.",
    )
    def warehouse_build_and_publish():
        @task
        def build() -> dict:
            from pingan.dag_tasks import build_task

            return build_task()

        @task
        def publish(built: dict, **context) -> list[str]:
            from pingan.dag_tasks import publish_task

            return publish_task(context["logical_date"])

        publish(build())

    return warehouse_build_and_publish()
