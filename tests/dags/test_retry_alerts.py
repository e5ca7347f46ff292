"""A try that failed and was retried shows in `pingan status` and the alert log, not only the final failure
(issue 21: a build broken by a rerun succeeded on its retry and nothing said so)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from click.testing import CliRunner

from pingan.cli.app import main
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import lake_store
from pingan.ops.alerts import recent_alerts
from pingan.ops.status import collect_status

pytestmark = pytest.mark.slow
FEED = "jiashan_incidents"  # nothing simulated: its file is missing, so every try fails as late


def test_each_retried_try_is_recorded_before_the_final_failure(airflow_db, home):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags")).get_dag(f"ingest_{FEED}")
    for t in dag.tasks:
        t.retries, t.retry_delay, t.retry_exponential_backoff = 1, timedelta(0), False
    run = dag.test(logical_date=pendulum.datetime(2025, 3, 2, 2, tz="Asia/Shanghai"))
    assert run.state == DagRunState.FAILED

    lake = lake_store(load_settings())
    alerts = sorted(recent_alerts(lake), key=lambda a: a.try_number)
    assert [(a.dag_id, a.task_id, a.kind, a.try_number) for a in alerts] == [
        (f"ingest_{FEED}", "load", "retry", 1),
        (f"ingest_{FEED}", "load", "failure", 2),
    ]
    assert all("2025-03-01: late" in a.error for a in alerts), alerts
    assert sorted(a["kind"] for a in collect_status(load_settings(), lake)["alerts"]) == ["failure", "retry"]
    status = CliRunner().invoke(main, ["status"])
    assert status.exit_code == 0, status.output
    assert "retried (try 1 failed) " in status.output and f"ingest_{FEED}.load" in status.output
