"""How fast the simulator makes data: ~1M Qingpu 110 calls (GB18030 CSV) by default, or every feed.

    .venv/bin/python bench/bench_simulate.py                 # 670 days of Qingpu 110 at scale 1 (~1M rows)
    .venv/bin/python bench/bench_simulate.py --all --days 30 # the whole simulate() for 30 days

Prints rows and rows per second; the files go to a temporary directory unless --out is given.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from pingan.core.storage import open_store
from pingan_sim import simulate
from pingan_sim.context import RunContext
from pingan_sim.incidents import QINGPU, day_bytes
from pingan_sim.reference import load_reference
from pingan_sim.writers import write_file


def bench_110(out: Path, start: date, days: int, scale: float) -> None:
    end = start + timedelta(days=days - 1)
    ctx = RunContext(
        out,
        open_store(f"file://{out / 'landing'}"),
        load_reference(),
        start,
        end,
        seed=42,
        scale=scale,
        defect_rate=0.01,
        truncate=None,
    )
    rows = size = 0
    t0 = time.perf_counter()
    for day in ctx.days():
        file, data, n, _ = day_bytes(ctx, QINGPU, day)
        write_file(out / file, data)
        rows, size = rows + n, size + len(data)
    elapsed = time.perf_counter() - t0
    print(
        f"qingpu_110_incidents: {rows:,} rows in {days} days, {size / 1e6:,.0f} MB GB18030, "
        f"{elapsed:.1f} s -> {rows / elapsed:,.0f} rows/s"
    )


def bench_all(out: Path, start: date, days: int, scale: float) -> None:
    end = start + timedelta(days=days - 1)
    t0 = time.perf_counter()
    counts = simulate(out, open_store(f"file://{out / 'landing'}"), start, end, scale=scale)
    elapsed = time.perf_counter() - t0
    for feed, n in counts.items():
        print(f"  {feed:34s} {n:>12,}")
    total = sum(counts.values())
    print(f"all feeds: {total:,} records in {days} days, {elapsed:.1f} s -> {total / elapsed:,.0f} records/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=670)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument(
        "--all", action="store_true", help="run the whole simulate() instead of Qingpu 110 only"
    )
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temporary directory)")
    args = parser.parse_args()
    run = bench_all if args.all else bench_110
    if args.out:
        run(args.out, args.start, args.days, args.scale)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp), args.start, args.days, args.scale)


if __name__ == "__main__":
    main()
