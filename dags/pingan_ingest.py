"""One ingest DAG per feed spec under connectors/: nightly at 02:00 Asia/Shanghai, each emitting an Asset.

A DAG per feed (not per jurisdiction) so a late or broken feed is retried, backfilled and alerted on
alone. The task calls pingan.dag_tasks, the same code the `pingan ingest` command runs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from pingan.feed_spec import load_specs
from pingan.settings import load_settings

DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=2),
}


def feed_asset(feed: str) -> Asset:
    return Asset(name=f"raw_{feed}", uri=f"pingan://raw/{feed}")


def make_ingest_dag(feed: str, schedule: str, tags: list[str]):
    @dag(
        dag_id=f"ingest_{feed}",
        schedule=schedule,
        start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=tags,
        doc_md=f"Load feed `{feed}` for the day before the run into the raw zone.",
    )
    def ingest():
        @task(outlets=[feed_asset(feed)])
        def load(**context) -> dict:
            from pingan.dag_tasks import ingest_task

            return ingest_task(feed, context["logical_date"])

        load()

    return ingest()


for _spec in load_specs(load_settings().connectors_dir).values():
    globals()[f"ingest_{_spec.feed}"] = make_ingest_dag(
        _spec.feed, _spec.schedule, ["pingan", "ingest", _spec.domain, _spec.jurisdiction_code]
    )
