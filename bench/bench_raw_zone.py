"""Benchmark: load 1M rows of the Qingpu GB18030 110 CSV into the raw zone, against two references.

    .venv/bin/python bench/bench_raw_zone.py [--rows 1000000] [--workdir /tmp/pingan-bench]

1. pingan: the real load (`ingest_feed`: block-wise decode, normalise, quarantine, Parquet, manifest),
   without the quality gate (that has its own benchmark, bench_quality.py), then with it.
2. floor: bare `pyarrow.csv.read_csv(encoding='gb18030')` → `pyarrow.parquet.write_table`.
3. tutorial: pandas `read_csv(encoding='gb18030')` → `to_parquet`.

Each runs in its own process so peak RSS (ru_maxrss) is its own. Targets (connectors issue): pingan at
least 0.6x the floor's rows/s, faster than pandas, peak RSS under 1.5 GB. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

DAY = date(2025, 3, 1)
FILE = f"qingpu/110/110接处警_{DAY:%Y%m%d}.csv"


def make_input(workdir: Path, rows: int) -> Path:
    """Simulate a week of Qingpu, then repeat its data lines (with fresh ids) up to `rows` rows."""
    from pingan.core.storage import open_store
    from pingan_sim import simulate

    target = workdir / "home" / "sim" / FILE
    if target.exists() and sum(1 for _ in target.open("rb")) - 1 >= rows:
        return target
    seed_home = workdir / "seed-home"
    simulate(
        seed_home,
        open_store(f"file://{seed_home / 'landing'}"),
        DAY,
        date(2025, 3, 7),
        seed=1,
        scale=1.0,
        defect_rate=0.0,
    )
    files = sorted((seed_home / "sim" / "qingpu" / "110").glob("*.csv"))
    header, body = None, []
    for f in files:
        lines = f.read_bytes().split(b"\n")
        header = lines[0]
        body.extend(line for line in lines[1:] if line)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        out.write(header + b"\n")
        written, copy = 0, 0
        while written < rows:
            for line in body:
                if written >= rows:
                    break
                ident, rest = line.split(b",", 1)
                out.write(ident + f"-{copy}".encode() + b"," + rest + b"\n")
                written += 1
            copy += 1
    return target


def run_pingan(workdir: Path, gate: bool) -> dict:
    os.environ["PINGAN_HOME"] = str(workdir / "home")
    os.environ["PINGAN_LAKE_URL"] = f"file://{workdir / ('lake-gate' if gate else 'lake')}"
    from pingan.core.feed_spec import load_specs
    from pingan.core.settings import load_settings
    from pingan.core.storage import open_store
    from pingan.ingest.load import ingest_feed
    from pingan.orchestration.pipeline import quality_gate

    settings = load_settings()
    spec = load_specs(settings.connectors_dir)["qingpu_110_incidents"]
    lake = open_store(settings.lake_url)
    lake.ensure()
    check = quality_gate(settings) if gate else None
    import pingan.ingest.formats.csv_reader  # noqa: F401 - imports are start-up cost, not per-row cost
    import pingan.ingest.transports.file_drop  # noqa: F401

    startup = 0.0
    if gate:  # GX's import and context are paid once per worker process, whatever the rows: timed apart
        from pingan.quality import gx_runtime
        from pingan.quality.suites import load_suite

        t = time.perf_counter()
        gx_runtime.validation_definition(load_suite(spec.entity, settings.expectations_dir))
        startup = time.perf_counter() - t
    t0 = time.perf_counter()
    result = ingest_feed(spec, DAY, settings, lake, gate=check)
    return {
        "seconds": time.perf_counter() - t0,
        "rows": result.rows_read,
        "written": result.rows_written,
        "quarantined": result.rows_quarantined,
        "gx_startup_seconds": startup,
    }


def run_floor(path: Path, out: Path) -> dict:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(encoding="gb18030"))
    pq.write_table(table, out, compression="zstd")
    return {"seconds": time.perf_counter() - t0, "rows": table.num_rows}


def run_pandas(path: Path, out: Path) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_csv(path, encoding="gb18030", dtype=str)
    df.to_parquet(out, compression="zstd")
    return {"seconds": time.perf_counter() - t0, "rows": len(df)}


def child(kind: str, workdir: Path, path: Path) -> None:
    if kind == "pingan":
        res = run_pingan(workdir, gate=False)
    elif kind == "pingan+gate":
        res = run_pingan(workdir, gate=True)
    elif kind == "floor":
        res = run_floor(path, workdir / "floor.parquet")
    else:
        res = run_pandas(path, workdir / "pandas.parquet")
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pingan-bench-raw-zone"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.workdir, args.path)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"preparing {args.rows:,} rows of GB18030 CSV in {args.workdir} ...", flush=True)
    path = make_input(args.workdir, args.rows)
    size_mb = path.stat().st_size / 1e6
    results = {}
    for kind in ("floor", "pandas", "pingan", "pingan+gate"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--workdir", str(args.workdir), "--path", str(path)],
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            print(proc.stderr[-3000:])
            raise SystemExit(f"{kind} failed")
        results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    floor = results["floor"]["rows"] / results["floor"]["seconds"]
    print(f"\ninput: {path} ({size_mb:,.0f} MB)")
    print(f"{'run':<12} {'rows':>10} {'seconds':>8} {'rows/s':>11} {'vs floor':>9} {'peak RSS MB':>12}")
    for kind, r in results.items():
        rate = r["rows"] / r["seconds"]
        print(
            f"{kind:<12} {r['rows']:>10,} {r['seconds']:>8.2f} {rate:>11,.0f} {rate / floor:>8.2f}x "
            f"{r['peak_rss_mb']:>12,.0f}"
        )
    p = results["pingan"]
    print(
        f"\npingan wrote {p['written']:,} rows, quarantined {p['quarantined']:,}; GX start-up (once per "
        f"process, not in the gate row) {results['pingan+gate']['gx_startup_seconds']:.1f} s"
    )
    print("targets: pingan >= 0.6x floor, faster than pandas, peak RSS < 1500 MB")


if __name__ == "__main__":
    main()
