"""Scale benchmark: how load, gate, build and the lake grow with jurisdictions, and the nightly with history.

One run measures:
- for 5, 10 and 20 jurisdictions x one month at scale 1: simulation, load (extract, normalise, commit) and
  quality-gate seconds through the real loader and GX gate (every feed gated on its first --gate-days
  days, scaled to the month: the gate's cost is per batch and about 2-3 s each on these 2 cores), the DuckDB build of the month, raw rows and
  lake bytes. Jurisdictions beyond the real five are made-up districts (pingan_sim/districts.py):
  replicas of the five districts' systems under other county codes, loaded from their own sources;
- for the five real districts: tonight's incremental build after one month and after one year of history
  (the year is the month's batches replicated with shifted dates and fresh ids, as bench_warehouse does);
- optionally (--spark) the Spark build of the largest lake on local[2];
- alone, with --cluster 1,2,4: the demo's lake (--cluster-days days at --cluster-scale) at 1x, 2x and 4x its
  data, each built from scratch on DuckDB and on a standalone Spark cluster (a master and two 1 GB, one-core
  workers on 127.0.0.1, started from the installed pyspark as tests/spark_cluster.py does), printing
  seconds per thousand raw rows for both engines.
It prints every number and the growth ratios; docs/scale.md extrapolates from them. Not a test.

    .venv/bin/python bench/bench_scale.py [--days 30] [--scale 1] [--jurisdictions 5,10,20]
                                          [--history-days 365] [--gate-days 3] [--spark] [--work var/bench/scale]
    .venv/bin/python bench/bench_scale.py --cluster 1,2,4 [--cluster-days 2] [--cluster-scale 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pingan import raw_zone  # noqa: E402
from pingan.core.canonical import entity_schema  # noqa: E402
from pingan.core.settings import Settings, load_settings  # noqa: E402
from pingan.core.storage import Store, lake_store  # noqa: E402

START = date(2025, 3, 1)
ID_COLUMNS = ("record_id", "source_record_id", "event_id")


def settings_for(home: Path, connectors: Path) -> Settings:
    os.environ["PINGAN_HOME"] = str(home)
    os.environ["PINGAN_CONNECTORS_DIR"] = str(connectors)
    for var in ("PINGAN_LAKE_URL", "PINGAN_LANDING_URL", "PINGAN_WAREHOUSE", "PINGAN_S3_ENDPOINT"):
        os.environ.pop(var, None)
    return load_settings()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class TimedGate:
    """The GX gate, timing itself: what a load spends in validation, apart from extract and normalise."""

    def __init__(self, settings: Settings):
        from pingan.orchestration.pipeline import quality_gate

        self.gate, self.seconds = quality_gate(settings), 0.0

    def __call__(self, spec, table):
        t = time.monotonic()
        try:
            return self.gate(spec, table)
        finally:
            self.seconds += time.monotonic() - t


def load_days(settings: Settings, feeds: list[str], days: list[date], gate_days: int) -> dict:
    """Every feed for every day through the real loader; the GX gate on the first `gate_days` days.

    The gate's cost is per batch (it does not depend on other districts), so gating a sample of days and
    scaling to all days keeps the run within half an hour; the load is measured on every day.
    """
    from pingan.core.feed_spec import load_specs
    from pingan.core.storage import lake_store
    from pingan.ingest.load import ingest_feed

    specs = load_specs(settings.connectors_dir)
    lake, gate = lake_store(settings), TimedGate(settings)
    t, rows, problems = time.monotonic(), 0, []
    for i, day in enumerate(days):
        for feed in feeds:
            result = ingest_feed(specs[feed], day, settings, lake, gate=gate if i < gate_days else None)
            rows += result.rows_read
            if result.status != "committed":
                problems.append(f"{feed} {day}: {result.status}")
    total = time.monotonic() - t
    if problems:
        print(f"  not committed: {problems[:5]}{' ...' if len(problems) > 5 else ''}", flush=True)
    gated = min(gate_days, len(days))
    return {"load_s": total - gate.seconds, "gate_s": gate.seconds * len(days) / gated, "rows_read": rows}


def jurisdiction_stages(args, work: Path) -> tuple[list[dict], Settings]:
    """Load replicas of the five districts one after another; measure after each requested size."""
    from pingan.core.deployment import feed_sources
    from pingan.core.feed_spec import load_specs
    from pingan.warehouse.build import build
    from pingan_sim import simulate
    from pingan_sim.districts import replica_sources, replicas, simulate_replica, write_specs

    connectors = work / "connectors"
    shutil.copytree(ROOT / "connectors", connectors)
    settings = settings_for(work / "home", connectors)
    real_feeds = sorted(load_specs(connectors))
    end = START + timedelta(days=args.days - 1)
    days = [START + timedelta(days=i) for i in range(args.days)]
    # under the local landing root ($PINGAN_HOME/sim), so the replicas' file feeds are paths relative to it
    all_replicas = replicas(max(args.jurisdictions) // 5 - 1, settings.sim_dir / "replicas")
    stages, loaded, totals = [], 0, {"simulate_s": 0.0, "load_s": 0.0, "gate_s": 0.0, "rows_read": 0}
    for n in sorted(args.jurisdictions):
        while loaded < n // 5:
            t = time.monotonic()
            if loaded == 0:
                landing = Store(settings.landing_url)
                landing.ensure()
                simulate(settings.home, landing, START, end, seed=42, scale=args.scale, defect_rate=0.01)
                feeds, reps = real_feeds, []
            else:
                rep = all_replicas[loaded - 1]
                simulate_replica(rep, START, end, scale=args.scale)
                feeds, reps = write_specs(rep, ROOT / "connectors", connectors, settings.sim_dir), [rep]
            totals["simulate_s"] += time.monotonic() - t
            settings = settings_for(work / "home", connectors)
            specs = load_specs(connectors)
            with (
                replica_sources(reps),
                feed_sources(settings, [specs[f] for f in (real_feeds if loaded == 0 else feeds)]),
            ):
                measured = load_days(settings, feeds, days, args.gate_days)
            for key in ("load_s", "gate_s", "rows_read"):
                totals[key] += measured[key]
            loaded += 1
            print(
                f"  loaded {5 * loaded} jurisdictions: {measured['rows_read']:,} rows read in "
                f"{measured['load_s']:.0f} s load + {measured['gate_s']:.0f} s gate",
                flush=True,
            )
        lake = Store(settings.lake_url)
        batches = raw_zone.committed_batches(lake)
        t = time.monotonic()
        result = build(settings, batches, lake=lake, full_refresh=True, build_date=end)
        build_s = time.monotonic() - t
        stage = {
            "jurisdictions": n, **totals, "build_s": build_s, "batches": len(batches),
            "raw_rows": sum(b.rows for b in batches), "lake_bytes": dir_bytes(settings.home / "lake"),
            "warehouse_bytes": result.warehouse_path.resolve().stat().st_size,
            "fct_incidents": result.mart_rows.get("fct_incidents"),
        }  # fmt: skip
        stages.append(stage)
        print(
            f"{n} jurisdictions x {args.days} days: {stage['raw_rows']:,} raw rows, lake "
            f"{stage['lake_bytes'] / 2**20:,.0f} MiB, load {stage['load_s']:.0f} s, gate {stage['gate_s']:.0f} s, "
            f"build {build_s:.0f} s, warehouse {stage['warehouse_bytes'] / 2**20:,.0f} MiB",
            flush=True,
        )
    return stages, settings


def shifted(table: pa.Table, entity: str, days: int, tag: str, batch_id: str, load_date: date) -> pa.Table:
    """A copy of a batch `days` later with its own ids (registry rows keep theirs: they are history)."""
    cols = {}
    for field in table.schema:
        col = table[field.name]
        if pa.types.is_timestamp(field.type):
            col = pc.add(col, pa.scalar(timedelta(days=days), pa.duration("us"))).cast(field.type)
        elif pa.types.is_date32(field.type):
            moved = pc.add(col.cast(pa.timestamp("s")), pa.scalar(timedelta(days=days), pa.duration("s")))
            col = moved.cast(pa.date32())
        elif field.name in ID_COLUMNS and entity != "enterprise":
            col = pc.binary_join_element_wise(col, pa.scalar(tag), "")
        cols[field.name] = col
    cols["batch_id"] = pa.array([batch_id] * table.num_rows, pa.string())
    cols["load_date"] = pa.array([load_date] * table.num_rows, pa.date32())
    return pa.table(cols, schema=table.schema)


def history_lake(month: Settings, home: Path, history_days: int) -> Settings:
    """The five real districts with `history_days` days before tonight: the month's days replicated."""
    settings = settings_for(home, month.connectors_dir)
    source, lake = lake_store(month), Store(settings.lake_url)  # the month's raw zone is encrypted
    lake.ensure()
    real = {s.feed for s in _real_specs()}
    batches = [b for b in raw_zone.committed_batches(source) if b.feed in real]
    first, tonight = min(b.load_date for b in batches), max(b.load_date for b in batches)
    span = (tonight - first).days  # history days the month offers
    start = tonight - timedelta(days=history_days)
    for b in batches:
        table = source.read_parquet([source.key_of(f) for f in b.files]).cast(entity_schema(b.entity))
        offset = (b.load_date - first).days
        targets = [tonight] if b.load_date == tonight else [
            start + timedelta(days=h) for h in range(offset, history_days, span)
        ]  # fmt: skip
        for day in targets:
            batch_id = f"bench-{day:%Y%m%d}-{b.feed}"
            key = (
                raw_zone.batch_prefix("raw", b.entity, b.jurisdiction_code, day, b.feed, batch_id)
                + "part-00000.parquet"
            )
            copy = (
                table
                if day == b.load_date
                else shifted(table, b.entity, (day - b.load_date).days, f"~{day:%Y%m%d}", batch_id, day)
            )
            lake.write_parquet(key, copy)
            raw_zone.commit(lake, {
                "manifest_version": raw_zone.MANIFEST_VERSION, "feed": b.feed, "entity": b.entity,
                "jurisdiction_code": b.jurisdiction_code, "load_date": day.isoformat(), "batch_id": batch_id,
                "status": "committed", "rows_read": table.num_rows, "rows_written": table.num_rows,
                "rows_quarantined": 0, "quarantine_by_rule": {}, "files": {"raw": [key], "quarantine": []},
            })  # fmt: skip
    return settings


def _real_specs():
    from pingan.core.feed_spec import load_specs

    return load_specs(ROOT / "connectors").values()


def nightly(settings: Settings) -> dict:
    """Build every day but tonight, then time tonight's incremental build."""
    from pingan.warehouse.build import build

    lake = Store(settings.lake_url)
    batches = raw_zone.committed_batches(lake)
    tonight = max(b.load_date for b in batches)
    build(
        settings,
        [b for b in batches if b.load_date < tonight],
        lake=lake,
        full_refresh=True,
        build_date=tonight - timedelta(days=1),
    )
    t = time.monotonic()
    build(settings, batches, lake=lake, build_date=tonight)
    return {
        "history_days": (tonight - min(b.load_date for b in batches)).days,
        "nightly_build_s": time.monotonic() - t,
        "raw_rows": sum(b.rows for b in batches),
        "lake_bytes": dir_bytes(settings.home / "lake"),
    }


def spark_build(settings: Settings) -> dict:
    from pingan.warehouse.spark import build_on_spark

    lake = Store(settings.lake_url)
    batches = raw_zone.committed_batches(lake)
    t = time.monotonic()
    result = build_on_spark(settings, batches, lake=lake)
    return {
        "spark_build_s": time.monotonic() - t,
        "raw_rows": sum(b.rows for b in batches),
        "fct_incidents": result.mart_rows.get("fct_incidents"),
    }


def demo_lake(home: Path, days: int, scale: float) -> Settings:
    """The demo's feeds simulated and loaded (load and gate) for `days` days at `scale`."""
    from pingan.orchestration.pipeline import ingest_day, sources_for
    from pingan_sim import simulate

    settings = settings_for(home, ROOT / "connectors")
    landing = Store(settings.landing_url)
    landing.ensure()
    end = START + timedelta(days=days - 1)
    simulate(settings.home, landing, START, end, seed=7, scale=scale, defect_rate=0.01)
    for n in range(days):
        with sources_for(settings):
            ingest_day(settings, START + timedelta(days=n))
    return settings


def cluster_scaling(multiples: list[int], days: int, scale: float, work: Path) -> list[dict]:
    """DuckDB and the standalone cluster on the same lakes at each multiple of the demo's data."""
    sys.path.insert(0, str(ROOT / "tests"))
    from spark_cluster import running_cluster

    from pingan.warehouse.build import build
    from pingan.warehouse.spark import build_on_spark

    rows = []
    with running_cluster(work / "cluster") as cluster:
        for m in multiples:
            settings = demo_lake(work / f"x{m}", days, scale * m)
            lake = Store(settings.lake_url)
            batches = raw_zone.committed_batches(lake)
            t = time.monotonic()
            build(settings, batches, lake=lake, full_refresh=True)
            duck_s = time.monotonic() - t
            t = time.monotonic()
            build_on_spark(settings, batches, lake=lake, master=cluster.master_url)
            spark_s = time.monotonic() - t
            raw_rows = sum(b.rows for b in batches)
            rows.append({"multiple": m, "raw_rows": raw_rows, "duckdb_s": duck_s, "spark_cluster_s": spark_s})
            print(
                f"{m}x ({raw_rows:,} raw rows): DuckDB {duck_s:.0f} s ({duck_s / raw_rows * 1000:.3f} s per 1k rows), "
                f"Spark cluster {spark_s:.0f} s ({spark_s / raw_rows * 1000:.3f} s per 1k rows), "
                f"Spark/DuckDB {spark_s / duck_s:.1f}x",
                flush=True,
            )
    base = rows[0]
    for r in rows[1:]:
        f = r["raw_rows"] / base["raw_rows"]
        print(
            f"{r['multiple']}x vs 1x, time per row relative (1.00 = linear): DuckDB "
            f"{r['duckdb_s'] / base['duckdb_s'] / f:.2f}, Spark cluster {r['spark_cluster_s'] / base['spark_cluster_s'] / f:.2f}"
        )
    return rows


def growth(stages: list[dict]) -> None:
    base = stages[0]
    k = base["jurisdictions"]
    print("growth per jurisdiction relative to 5 (1.00 = linear):")
    for s in stages[1:]:
        f = s["jurisdictions"] / k
        print(
            f"  {s['jurisdictions']:>3}: rows {s['raw_rows'] / base['raw_rows'] / f:.2f}, lake "
            f"{s['lake_bytes'] / base['lake_bytes'] / f:.2f}, load {s['load_s'] / base['load_s'] / f:.2f}, gate "
            f"{s['gate_s'] / base['gate_s'] / f:.2f}, build {s['build_s'] / base['build_s'] / f:.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--jurisdictions", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10, 20])
    ap.add_argument("--history-days", type=int, default=365)
    ap.add_argument(
        "--gate-days", type=int, default=7, help="Days of each made-up replica run through the gate."
    )
    ap.add_argument("--spark", action="store_true", help="Also build the largest lake on Spark (local[2]).")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "scale")
    ap.add_argument(
        "--cluster",
        type=lambda s: [int(x) for x in s.split(",")],
        help="Only the engine comparison: the demo's data at these multiples, DuckDB against a local Spark cluster.",
    )
    ap.add_argument("--cluster-days", type=int, default=2)
    ap.add_argument("--cluster-scale", type=float, default=0.1)
    args = ap.parse_args()
    if args.cluster:
        shutil.rmtree(args.work, ignore_errors=True)
        rows = cluster_scaling(args.cluster, args.cluster_days, args.cluster_scale, args.work)
        (args.work / "cluster.json").write_text(json.dumps(rows, indent=2))
        return
    if any(n % 5 for n in args.jurisdictions):
        ap.error("--jurisdictions must be multiples of 5 (replicas of the five districts)")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    started = time.monotonic()
    stages, largest = jurisdiction_stages(args, args.work)
    growth(stages)
    month = nightly(history_lake(largest, args.work / "history-month", args.days - 1))
    year = nightly(history_lake(largest, args.work / "history-year", args.history_days))
    print(
        f"5 jurisdictions, tonight's incremental build: {month['nightly_build_s']:.1f} s after "
        f"{month['history_days']} days of history, {year['nightly_build_s']:.1f} s after {year['history_days']} days "
        f"({year['raw_rows']:,} raw rows, lake {year['lake_bytes'] / 2**20:,.0f} MiB): "
        f"{year['nightly_build_s'] / month['nightly_build_s']:.2f}x (target: flat)",
        flush=True,
    )
    spark = spark_build(largest) if args.spark else None
    if spark:
        print(
            f"Spark local[2], {stages[-1]['jurisdictions']} jurisdictions x {args.days} days from scratch: "
            f"{spark['spark_build_s']:.0f} s (DuckDB full build {stages[-1]['build_s']:.0f} s)"
        )
    summary = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "stages": stages,
        "nightly_month": month,
        "nightly_year": year,
        "spark": spark,
        "elapsed_s": time.monotonic() - started,
    }
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"whole run {summary['elapsed_s'] / 60:.1f} min; numbers in {args.work / 'summary.json'}")


if __name__ == "__main__":
    main()
