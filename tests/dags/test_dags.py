"""The DAGs: generated from the feed specs, parse cleanly, and really run a feed with dag.test()."""

from __future__ import annotations

from datetime import date, timedelta

import pendulum
import pytest

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store

FEEDS = sorted(load_specs(PROJECT_ROOT / "connectors"))


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_dags_import_without_errors_and_cover_every_feed(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {f"ingest_{f}" for f in FEEDS} | {"warehouse_build_and_publish"}


@pytest.mark.parametrize("feed", FEEDS)
def test_ingest_dag_is_nightly_in_shanghai_with_retries_and_timeout(dagbag, feed):
    dag = dagbag.get_dag(f"ingest_{feed}")
    spec = load_specs(PROJECT_ROOT / "connectors")[feed]
    assert {"pingan", "ingest", spec.domain, spec.jurisdiction_code} <= set(dag.tags)
    assert dag.timetable.expression == "0 2 * * *"
    assert str(getattr(dag.timetable.timezone, "name", dag.timetable.timezone)) == "Asia/Shanghai"
    assert not dag.catchup
    for t in dag.tasks:
        assert t.retries >= 2 and t.retry_exponential_backoff
        assert t.execution_timeout == timedelta(hours=2)
    assert [o.name for o in dag.tasks[0].outlets] == [f"raw_{feed}"]


@pytest.mark.parametrize("minutes_late", [1, 30, 140])
def test_a_dag_unpaused_after_its_night_waits_for_the_next_one(dagbag, minutes_late):
    """A past night is a backfill: unpausing a DAG shortly after its cron time must not run that night
    (Airflow's default window of a tenth of a day did, loading today's cursor beside a backfill)."""
    from unittest import mock

    import airflow.timetables.trigger as trigger
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import TimeRestriction

    for dag_id in dagbag.dag_ids:
        # the timetable as the scheduler holds it: serialized, then decoded into Airflow's core class
        timetable = decode_timetable(encode_timetable(dagbag.get_dag(dag_id).timetable))
        since = TimeRestriction(earliest=pendulum.datetime(2026, 12, 1, tz="UTC"), latest=None, catchup=True)
        night = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=since).run_after
        now = night + timedelta(minutes=minutes_late)
        first = TimeRestriction(earliest=None, latest=None, catchup=False)
        with mock.patch.object(trigger, "utcnow", return_value=now):
            run = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=first)
        assert run.run_after > now, (dag_id, f"unpaused at {now}, first run at {run.run_after}")


@pytest.mark.slow
def test_dag_test_loads_the_day_before_the_run(dagbag, airflow_db, home):
    from airflow.utils.state import DagRunState

    from pingan_sim import simulate

    day = date(2025, 3, 1)
    settings = load_settings()
    landing = Store(settings.landing_url)
    landing.ensure()
    simulate(settings.home, landing, day, day, seed=3, scale=0.05)
    dag = dagbag.get_dag("ingest_jiashan_incidents")
    for t in dag.tasks:
        t.retries = 0  # a failure must show as a failed run here, not a retry wait

    run = dag.test(logical_date=pendulum.datetime(2025, 3, 2, 2, tz="Asia/Shanghai"))
    assert run.state == DagRunState.SUCCESS
    manifest = raw_zone.committed_manifest_record(Store(settings.lake_url), "jiashan_incidents", day)
    assert manifest is not None and manifest.rows_written > 0

    # the next night has no file yet: the run fails (the feed is late) and commits nothing
    late = dag.test(logical_date=pendulum.datetime(2025, 3, 3, 2, tz="Asia/Shanghai"))
    assert late.state == DagRunState.FAILED
    assert (
        raw_zone.committed_manifest_record(Store(settings.lake_url), "jiashan_incidents", date(2025, 3, 2))
        is None
    )
