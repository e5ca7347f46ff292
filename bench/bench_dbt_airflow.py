"""dbt under Airflow: today's one `dbt build` task versus astronomer-cosmos (one task per model, seed and
test; LoadMode.DBT_MANIFEST from `dbt parse`, ExecutionMode.LOCAL, writers serialised by
max_active_tasks=1 since DuckDB allows one writer), both on the same demo data and working file.

    .venv/bin/python bench/bench_dbt_airflow.py [--days 3 --scale 0.2]

Prints wall-clock seconds of each; it asserts nothing. Needs the test extra (cosmos, the simulator).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def prepare(home: Path, days: int, scale: float) -> Path:
    """Simulate and load `days` days, then a working file with the raw views a build gives dbt."""
    import duckdb

    from pingan import raw_zone
    from pingan.core.feed_spec import load_specs
    from pingan.core.settings import load_settings
    from pingan.core.storage import lake_store, open_store
    from pingan.orchestration.pipeline import ingest_day
    from pingan.warehouse.build import TZ, create_raw_views, plan_batches
    from pingan.warehouse.inputs import register_batches, register_code_mappings, register_feeds
    from pingan_sim import simulate

    settings = load_settings()
    start = date(2025, 3, 1)
    end = start + timedelta(days=days - 1)
    simulate(settings.home, open_store(settings.landing_url), start, end, seed=42, scale=scale)
    day = start
    while day <= end:
        ingest_day(settings, day)
        day += timedelta(days=1)
    lake = lake_store(settings)
    working = home / "prepared.duckdb"
    with duckdb.connect(str(working)) as con:
        con.execute(f"SET TimeZone = '{TZ}'")
        plan = plan_batches(con, raw_zone.committed_batches(lake), full_refresh=True)
        create_raw_views(con, plan.pending_files, lake)
        register_batches(con, plan)
        register_feeds(con, load_specs(settings.connectors_dir), plan.committed, end)
        register_code_mappings(con, load_specs(settings.connectors_dir))
    return working


def one_build_task(settings, db: Path) -> float:
    from pingan.warehouse.build import _run_dbt

    started = time.monotonic()
    _run_dbt(settings, db, s3=None, full_refresh=True, select=None)
    return time.monotonic() - started


COSMOS_DAG = """
# airflow dag: the warehouse as cosmos tasks (bench only)
import os
from pathlib import Path
import pendulum
from airflow.sdk import DAG
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, LoadMode

DBT = Path(os.environ["BENCH_DBT_DIR"])
with DAG("bench_cosmos", schedule=None, start_date=pendulum.datetime(2025, 1, 1), max_active_tasks=1,
         catchup=False) as dag:
    DbtTaskGroup(
        group_id="warehouse",
        project_config=ProjectConfig(dbt_project_path=DBT, manifest_path=os.environ["BENCH_MANIFEST"]),
        profile_config=ProfileConfig(profile_name="pingan", target_name="local",
                                     profiles_yml_filepath=DBT / "profiles.yml"),
        # a test across two models (relationships) runs after both, not with the first one
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, should_detach_multiple_parents_tests=True),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                         dbt_executable_path=os.environ["BENCH_DBT"]),
        operator_args={"full_refresh": True, "install_deps": False},
    )
"""


def cosmos_tasks(settings, db: Path, work: Path) -> tuple[float, int, str]:
    env = {**os.environ, "PINGAN_DBT_DB_PATH": str(db), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    target = work / "cosmos-target"
    subprocess.run(
        [
            str(BIN / "dbt"),
            "parse",
            "--project-dir",
            str(settings.dbt_dir),
            "--profiles-dir",
            str(settings.dbt_dir),
            "--target-path",
            str(target),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    dags = work / "dags"
    dags.mkdir()
    (dags / "bench_cosmos.py").write_text(COSMOS_DAG)
    airflow_home = work / "airflow"
    env |= {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "BENCH_DBT_DIR": str(settings.dbt_dir),
        "BENCH_MANIFEST": str(target / "manifest.json"),
        "BENCH_DBT": str(BIN / "dbt"),
    }
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, env=env, capture_output=True)
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", "bench_cosmos", "2025-03-02"],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    tasks = output.count("[DAG TEST] end task")
    state = "success" if done.returncode == 0 and "state=success, run_type=manual" in output else "failed"
    if state == "failed":
        (Path(tempfile.gettempdir()) / "bench_cosmos.log").write_text(output)
        print(f"cosmos run failed; its output: {Path(tempfile.gettempdir()) / 'bench_cosmos.log'}")
    return elapsed, tasks, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pingan-bench-dbt-"))
    os.environ["PINGAN_HOME"] = str(work / "home")
    from pingan.core.settings import load_settings

    prepared = prepare(work, args.days, args.scale)
    settings = load_settings()
    a, b = work / "one_task.duckdb", work / "cosmos.duckdb"
    shutil.copyfile(prepared, a)
    shutil.copyfile(prepared, b)
    one = one_build_task(settings, a)
    cosmos, tasks, state = cosmos_tasks(settings, b, work)
    print(f"demo data: {args.days} days at scale {args.scale}")
    print(f"one dbt build task (in-process dbtRunner): {one:.1f} s")
    print(f"cosmos DBT_MANIFEST + LOCAL, serialised:   {cosmos:.1f} s ({tasks} tasks, {state})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
