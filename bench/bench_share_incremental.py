"""Benchmark: what one night costs a partner share at one week of history against many nights.

    .venv/bin/python bench/bench_share_incremental.py [--nights 7,365] [--rows-per-night 2000]

For each history length H a synthetic published warehouse (fct_incidents, fct_grid_events and the monthly
mart_cross_border aggregate, with the columns the agreements read) is published for Wujiang: a full first
snapshot, pulled into a partner folder, then --samples nights of new rows merged (each timed: the steady
state) and pulled. Then night H lands, with a late change to a row of night H-1 (and, in the second run, a
row of the first night withdrawn), and the real `publish` merges it (timed) and the real `pull` fetches it.
Printed per H: the rows the night prepared (read, treated, redacted, guarded: only the changed ones), the
publish time of night H and of the fastest steady night (wall clock, and the CPU time of all the process's
threads, which other processes on a shared machine disturb less), the time of `publish --full` of the same state,
the files and bytes the partner downloads for night H, and the bytes a full re-snapshot makes the partner
download; the machine's load average beside each line (the machine is shared: compare ratios, and read
them with the load). Not a test; it prints numbers. Targets: the night's download and the night's publish
time do not grow with history (ratio H nights / one week <= 1.2x).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_NIGHT = date(2024, 1, 1)
PLACES = [("310118", "金泽镇", True), ("310118", "赵巷镇", False), ("320509", "黎里镇", True),
          ("320509", "松陵街道", False), ("330421", "西塘镇", True), ("330421", "魏塘街道", False)]  # fmt: skip


def write_warehouse(
    path: Path, nights: int, per_night: int, *, changed: int = -1, withdrawn: int = -1
) -> None:
    """nights of synthetic rows; incident `changed` gets a new disposition, incident `withdrawn` is gone."""
    path.unlink(missing_ok=True)
    places = " UNION ALL ".join(f"SELECT {i} AS p, '{j}' AS jc, '{t}' AS town, {b} AS border"
                                for i, (j, t, b) in enumerate(PLACES))  # fmt: skip
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        con.execute(f"CREATE TEMP TABLE places AS {places}")
        con.execute(f"""CREATE TEMP TABLE gen AS SELECT i, i // {per_night} AS night,
            TIMESTAMPTZ '{FIRST_NIGHT} 00:00:00+08' + to_days(CAST(i // {per_night} AS INTEGER))
              + to_seconds(CAST((i % {per_night}) * 86000 // {per_night} AS BIGINT)) AS ts, places.*
            FROM range({nights * per_night}) r(i) JOIN places ON places.p = i % 6""")  # fmt: skip
        con.execute(f"""CREATE TABLE fct_incidents AS SELECT
            jc || ':INC' || lpad(CAST(i AS VARCHAR), 9, '0') AS record_id, jc AS jurisdiction_code,
            'feed' AS source_feed, 'INC' || i AS source_record_id, 'C01' AS source_category_code,
            'dispute' AS category, ts AS reported_at, ts + INTERVAL 1 MINUTE AS dispatched_at,
            ts + INTERVAL 6 MINUTE AS arrived_at, CAST(NULL AS TIMESTAMPTZ) AS closed_at,
            CAST(300 + i % 900 AS BIGINT) AS dispatch_to_arrival_seconds, town, border AS is_border_town,
            'G-' || (i % 50) AS grid_id, CAST(31.0 + (i % 1000) / 10000.0 AS DOUBLE) AS latitude, CAST(120.9 AS DOUBLE) AS longitude,
            town || '人民路' || (i % 200) || '号' AS address, '派出所' AS handling_unit,
            CASE WHEN i = {changed} THEN '移送处理' ELSE '已调解' END AS disposition,
            '13' || lpad(CAST(i * 7919 % 1000000000 AS VARCHAR), 9, '0') AS caller_phone,
            CAST(NULL AS VARCHAR) AS involved_id_numbers, 'src.csv' AS source_file,
            'batch-' || night AS batch_id, ts AS ingested_at
            FROM gen WHERE i <> {withdrawn}""")  # fmt: skip
        con.execute("""CREATE TABLE fct_grid_events AS SELECT
            jc || ':GE' || lpad(CAST(i AS VARCHAR), 9, '0') AS event_id, jc AS jurisdiction_code,
            'grid' AS source_feed, '纠纷' AS source_event_type, 'dispute' AS event_type,
            'G-' || (i % 50) AS grid_id, town, border AS is_border_town, i % 2 = 0 AS is_cross_border,
            ts AS discovered_at, ts + INTERVAL 1 HOUR AS dispatched_at, CAST(NULL AS TIMESTAMPTZ) AS verified_at,
            CAST(NULL AS TIMESTAMPTZ) AS handled_at, CAST(NULL AS TIMESTAMPTZ) AS closed_at,
            CAST(NULL AS TIMESTAMPTZ) AS feedback_at, false AS is_closed, false AS is_overdue,
            '张伟;李娜' AS parties, town || '某路' || (i % 90) || '号' AS address, '网格站' AS handling_unit,
            'ge.jsonl' AS source_file, 'ge-batch-' || night AS batch_id, ts AS ingested_at
            FROM gen WHERE i % 4 = 0""")  # fmt: skip
        con.execute("""CREATE TABLE mart_cross_border AS SELECT
            CAST(date_trunc('month', reported_at) AS DATE) AS activity_month,
            'border_town_incident' AS activity_kind, jurisdiction_code, town AS subject,
            town AS subject_name, count(*) AS activity_count
            FROM fct_incidents WHERE is_border_town GROUP BY ALL""")  # fmt: skip


def night(i: int) -> date:
    return FIRST_NIGHT + timedelta(days=i)


def measure(nights: int, per_night: int, agreements: Path, *, withdraw_old: bool, samples: int = 3) -> dict:
    """Night `nights` lands: its new rows, a late change to a row of the night before and, with
    withdraw_old, the withdrawal of a first-night row (its file is rewritten: copy-on-write)."""
    from pingan.core.settings import load_settings
    from pingan.core.storage import open_store
    from pingan.sharing.partner import load_profile, pull
    from pingan.sharing.provision import provision
    from pingan.sharing.publish import publish, share_store

    with tempfile.TemporaryDirectory(prefix="bench-share-") as tmp:
        os.environ["PINGAN_HOME"] = str(Path(tmp) / "home")
        Path(os.environ["PINGAN_HOME"]).mkdir()
        settings = load_settings()
        lake, shares = open_store(settings.lake_url, settings.s3), share_store(settings)
        lake.ensure()
        today = night(nights + 1)

        def run(as_of: date, full: bool = False):
            return publish(settings, lake, shares, partners=["wujiang"], as_of=as_of, agreements_dir=agreements,
                           today=today, full=full)  # fmt: skip

        write_warehouse(settings.warehouse_path, nights - 1 - samples, per_night)
        run(night(nights - 2 - samples))  # the first, full snapshot
        provision(settings, shares, backend="none", today=today, agreements_dir=agreements)
        profile = load_profile(settings.home / "partners" / "wujiang" / "pull-profile.json")
        dest = Path(tmp) / "partner"
        pull(profile, dest)
        steady, steady_cpu = [], []
        for j in range(1, samples + 1):  # merged nights of new rows: the steady state, timed
            write_warehouse(settings.warehouse_path, nights - 1 - samples + j, per_night)
            started, cpu = time.perf_counter(), time.process_time()
            run(night(nights - 2 - samples + j))
            steady.append(time.perf_counter() - started)
            steady_cpu.append(time.process_time() - cpu)
            pull(profile, dest)
        steady_s = min(steady)  # the machine is shared: the least disturbed of the nights

        start = (nights - 2) * per_night
        yesterday_row = start + (-start) % 6  # i % 6 == 0: a Qingpu border-town incident (in the grant)
        write_warehouse(settings.warehouse_path, nights, per_night, changed=yesterday_row,
                        withdrawn=0 if withdraw_old else -1)  # fmt: skip
        started, cpu = time.perf_counter(), time.process_time()
        published = run(night(nights - 1))
        publish_s, publish_cpu = time.perf_counter() - started, time.process_time() - cpu
        pulled = pull(profile, dest)
        prepared = _rows_prepared(shares)
        started = time.perf_counter()
        run(night(nights - 1), full=True)
        full_s = time.perf_counter() - started
        full_pull = pull(profile, Path(tmp) / "fresh-partner")
        return {
            "nights": nights,
            "rows": sum(p.rows for p in published),
            "publish_s": publish_s,
            "steady_s": steady_s,
            "steady_cpu": min(steady_cpu),
            "publish_cpu": publish_cpu,
            "full_s": full_s,
            "prepared": prepared,
            "modes": ",".join(sorted({p.write_mode for p in published})),
            "files_added": sum(p.files_added for p in published),
            "files": sum(p.files_downloaded for p in pulled),
            "bytes": sum(p.bytes_downloaded for p in pulled),
            "manifest_bytes": sum(p.manifest_bytes for p in pulled),
            "full_bytes": sum(p.bytes_downloaded for p in full_pull),
        }


def _rows_prepared(shares) -> int:
    """Rows the night read, treated, redacted and guarded, over Wujiang's datasets (from the manifests)."""
    import json

    from pingan.sharing import manifest as mf

    total = 0
    for dataset in (
        "border_incidents",
        "cross_border_grid_events",
        "checkpoint_activity",
        "cross_border_kpis",
    ):
        prefix = mf.dataset_prefix("wujiang", dataset)
        pointer = json.loads(shares.get_bytes(prefix + mf.LATEST))
        total += json.loads(shares.get_bytes(prefix + pointer["manifest"]))["write"]["rows_prepared"]
    return total


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nights", default="7,365", help="history lengths, comma-separated")
    parser.add_argument("--rows-per-night", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=3, help="merged nights timed before the measured one")
    args = parser.parse_args()
    horizons = [int(n) for n in args.nights.split(",")]
    import logging

    logging.disable(logging.WARNING)
    print(
        f"Wujiang's 4 datasets, {args.rows_per_night:,} incidents a night (all jurisdictions) before the grant's filters"
    )
    print(f"{'nights':>6} {'shared rows':>12} {'prepared':>9} {'publish s':>10} {'cpu s':>6} {'steady s':>9} {'cpu s':>6} "
          f"{'--full s':>9} {'write':>14} {'files added':>11} {'pull files':>10} {'pull bytes':>11} "
          f"{'manifests':>10} {'full re-snapshot bytes':>22}")  # fmt: skip
    for withdraw_old, title in ((False, "a night of new rows and a late change to yesterday's row"),
                                (True, "the same night withdrawing a row of the first night as well")):  # fmt: skip
        print(title)
        results = []
        for n in horizons:
            r = measure(
                n, args.rows_per_night, ROOT / "agreements", withdraw_old=withdraw_old, samples=args.samples
            )
            results.append(r)
            print(f"{r['nights']:>6} {r['rows']:>12,} {r['prepared']:>9,} {r['publish_s']:>10.2f} "
                  f"{r['publish_cpu']:>6.2f} {r['steady_s']:>9.2f} {r['steady_cpu']:>6.2f} {r['full_s']:>9.2f} {r['modes']:>14} {r['files_added']:>11} "
                  f"{r['files']:>10} {r['bytes']:>11,} {r['manifest_bytes']:>10,} {r['full_bytes']:>22,}   "
                  f"[{_load()}]")  # fmt: skip
        first, last = results[0], results[-1]
        print(f"  night's download, {last['nights']} nights / {first['nights']} nights: "
              f"{last['bytes'] / first['bytes']:.2f}x (target <= 1.2x); a full re-snapshot: "
              f"{last['full_bytes'] / first['full_bytes']:.2f}x")  # fmt: skip
        print(f"  publish time of a night of new rows (fastest of {args.samples} merged nights), {last['nights']} nights / "
              f"{first['nights']} nights: {last['steady_s']:.2f} s / {first['steady_s']:.2f} s = "
              f"{last['steady_s'] / first['steady_s']:.2f}x (target <= 1.2x); CPU time (all threads, less "
              f"disturbed by the load): {last['steady_cpu']:.2f} s / {first['steady_cpu']:.2f} s = "
              f"{last['steady_cpu'] / first['steady_cpu']:.2f}x")  # fmt: skip
        print(f"  publish time of the measured night (one run): {last['publish_s']:.2f} s / {first['publish_s']:.2f} s = "
              f"{last['publish_s'] / first['publish_s']:.2f}x (CPU {last['publish_cpu']:.2f} s / "
              f"{first['publish_cpu']:.2f} s = {last['publish_cpu'] / first['publish_cpu']:.2f}x); publish --full of the same state: "
              f"{last['full_s']:.2f} s / {first['full_s']:.2f} s = {last['full_s'] / first['full_s']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
