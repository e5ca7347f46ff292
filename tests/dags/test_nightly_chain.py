"""The whole night under Airflow with dag.test(): every feed's ingest DAG for one day, then the warehouse
DAG (fired by its deadline, as when a feed never arrives), against a lake on a real S3 server (SeaweedFS).

One feed fails a critical quality rule (every category code unmapped) and one feed is late (no file):
both ingest runs fail and record an alert, the others commit, the warehouse still builds and publishes,
nothing from the failed feeds reaches the marts or the shares, and the marts flag both as stale.
"""

from __future__ import annotations

import re
from datetime import date

import duckdb
import pendulum
import pytest

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store, lake_store
from pingan.ops.alerts import recent_alerts
from pingan.ops.status import collect_status

DAY = date(2025, 3, 1)
INGEST_AT = pendulum.datetime(2025, 3, 2, 2, tz="Asia/Shanghai")  # the 02:00 run that loads DAY
DEADLINE_AT = pendulum.datetime(2025, 3, 2, 6, tz="Asia/Shanghai")  # the warehouse's time condition
FEEDS = sorted(load_specs(PROJECT_ROOT / "connectors"))
BLOCKED, LATE = "jiashan_incidents", "qingpu_grid_events"


@pytest.fixture
def s3_lake(home, s3_server, monkeypatch):
    monkeypatch.setenv("PINGAN_LAKE_URL", "s3://nightly-lake/pingan")
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    settings = load_settings()
    return settings, lake_store(settings)  # with the deployment's lake key: the night encrypts raw files


def _simulate_night(settings) -> None:
    from pingan_sim import simulate

    landing = Store(settings.landing_url)
    simulate(settings.home, landing, DAY, DAY, seed=5, scale=0.05, defect_rate=0.01)
    jiashan = settings.sim_dir / "jiashan" / "incidents" / f"jiashan_jq_{DAY:%Y%m%d}.csv"
    text = jiashan.read_bytes().decode("utf-8-sig")
    unmapped, n = re.subn(r"\bJQ\d{4}\b", "JQ9999", text)  # a code no mapping knows
    assert n > 10, "the Jiashan file should carry category codes"
    jiashan.write_bytes(unmapped.encode("utf-8-sig"))
    (settings.sim_dir / "qingpu" / "grid" / f"grid_events_{DAY:%Y%m%d}.jsonl").unlink()


@pytest.mark.slow
def test_the_whole_night_with_one_blocked_and_one_late_feed(airflow_db, s3_lake):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    settings, lake = s3_lake
    _simulate_night(settings)
    dagbag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert dagbag.import_errors == {}

    states = {}
    for feed in FEEDS:
        dag = dagbag.get_dag(f"ingest_{feed}")
        for t in dag.tasks:
            t.retries = 0  # a failure shows as a failed run here, not a retry wait
        states[feed] = dag.test(logical_date=INGEST_AT).state
    expected = {f: DagRunState.FAILED if f in (BLOCKED, LATE) else DagRunState.SUCCESS for f in FEEDS}
    assert states == expected

    committed = {m.feed: m for m in raw_zone.committed_manifest_records(lake) if m.load_date == DAY}
    assert set(committed) == set(FEEDS) - {BLOCKED, LATE}
    blocked = [r for r in raw_zone.attempt_records(lake, BLOCKED) if r.load_date == DAY]
    assert [r.status for r in blocked] == ["blocked"]

    # each failed ingest run left an alert that `pingan status` shows
    alerts = {a.dag_id for a in recent_alerts(lake)}
    assert alerts == {f"ingest_{BLOCKED}", f"ingest_{LATE}"}
    assert {a["dag_id"] for a in collect_status(settings, lake)["alerts"]} == alerts

    warehouse = dagbag.get_dag("warehouse_build_and_publish")
    for t in warehouse.tasks:
        t.retries = 0
    run = warehouse.test(logical_date=DEADLINE_AT)
    assert run.state == DagRunState.SUCCESS
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "build": "success",
        "publish": "success",
    }

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        incidents = dict(con.sql("select source_feed, count(*) from fct_incidents group by all").fetchall())
        freshness = dict(con.sql("select source_feed, is_stale from mart_feed_freshness").fetchall())
        build_dates = {
            str(d) for (d,) in con.sql("select distinct build_date from mart_feed_freshness").fetchall()
        }
    # every committed incident row is in the mart, none of the blocked feed's
    for feed in ("qingpu_110_incidents", "wujiang_incidents"):
        raw = lake.read_parquet(committed[feed].files.raw)
        assert incidents.get(feed) == raw.num_rows > 0
    assert BLOCKED not in incidents
    assert build_dates == {DAY.isoformat()}
    assert freshness == {f: f in (BLOCKED, LATE) for f in FEEDS}

    # shares were published for the day, and none carries a row of the blocked feed
    shares = Store(settings.share_url, settings.s3)
    snapshots = [k for k in shares.list("share/") if k.endswith(".parquet")]
    assert snapshots
    for key in snapshots:
        table = shares.read_parquet([key])
        if "source_feed" in table.column_names:
            assert BLOCKED not in set(table.column("source_feed").to_pylist()), key

    # lineage: each share traces back through the models to the committed batches and their source files
    from click.testing import CliRunner

    from pingan.cli.app import main
    from pingan.ops.lineage import trace

    share = trace(settings, lake, "jiashan/border_incidents")
    assert share.table == "fct_incidents" and share.models[-1] == "fct_incidents"
    assert "stg_raw__incidents" in share.models and share.raw_entities == ["incident"]
    assert {b.batch_id for b in share.batches} == set(share.snapshot["source"]["batch_ids"])
    assert {b.feed for b in share.batches} <= {
        "qingpu_110_incidents",
        "wujiang_incidents",
    }  # never the blocked one
    qingpu = next(b for b in share.batches if b.feed == "qingpu_110_incidents")
    assert [s.sha256 for s in qingpu.sources] == [
        s["sha256"] for s in committed["qingpu_110_incidents"].sources
    ]
    printed = CliRunner().invoke(main, ["lineage", "jiashan/border_incidents"])
    assert printed.exit_code == 0, printed.output
    assert "← table fct_incidents" in printed.output and "110接处警_20250301.csv" in printed.output

    # OpenLineage events (file transport): each committed load, the dbt build's models, each new snapshot
    import json

    from pingan.ops.lineage_events import events_path

    events = [json.loads(line) for line in events_path(settings).read_text(encoding="utf-8").splitlines()]
    jobs = {e["job"]["name"] for e in events}
    assert {f"ingest.{f}" for f in committed} <= jobs and f"ingest.{BLOCKED}" not in jobs
    assert any(j.startswith("publish.jiashan.") for j in jobs)
    dbt_outputs = {
        o["name"]
        for e in events
        if e["eventType"] == "COMPLETE"
        for o in e.get("outputs", [])
        if not e["job"]["name"].startswith(("ingest.", "publish."))
    }
    assert any(name.endswith("fct_incidents") for name in dbt_outputs), sorted(dbt_outputs)[:10]
