"""Build the warehouse when the feeds have landed (Asset schedule), then publish partner shares."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from pingan.feed_spec import load_specs
from pingan.settings import load_settings

from pingan_ingest import DEFAULT_ARGS, feed_asset  # noqa: I001 - sibling DAG module on the dags path


@dag(
    dag_id="warehouse_build_and_publish",
    schedule=[feed_asset(feed) for feed in load_specs(load_settings().connectors_dir)],
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(hours=3)},
    tags=["pingan", "warehouse", "sharing"],
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


warehouse_build_and_publish()
