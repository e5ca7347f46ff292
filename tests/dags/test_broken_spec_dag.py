"""A feed file with an unknown key fails that feed's DAG, naming the file and the key; every other DAG still
parses (issue 21: one bad YAML stopped every ingest DAG)."""

from __future__ import annotations

import shutil

import pendulum
import pytest

from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import lake_store
from pingan.ops.alerts import recent_alerts

pytestmark = pytest.mark.slow


def test_a_broken_feed_spec_fails_its_dag_and_the_others_parse(airflow_db, home, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    connectors = tmp_path / "connectors"
    shutil.copytree(PROJECT_ROOT / "connectors", connectors)
    broken = connectors / "grid_events" / "qingpu.yaml"
    broken.write_text(broken.read_text(encoding="utf-8") + "\nretention_dayz: 30\n", encoding="utf-8")
    monkeypatch.setenv("PINGAN_CONNECTORS_DIR", str(connectors))

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    ingest = {d for d in bag.dag_ids if d.startswith("ingest_")}
    assert (
        len(ingest) == 9
        and "ingest_qingpu_grid_events" in ingest
        and "warehouse_build_and_publish" in bag.dag_ids
    )

    run = bag.get_dag("ingest_qingpu_grid_events").test(
        logical_date=pendulum.datetime(2025, 3, 2, 2, tz="Asia/Shanghai")
    )
    assert run.state == DagRunState.FAILED
    (alert,) = recent_alerts(lake_store(load_settings()))
    assert alert.dag_id == "ingest_qingpu_grid_events" and alert.kind == "failure"
    assert str(broken) in alert.error and "retention_dayz: unknown key" in alert.error
