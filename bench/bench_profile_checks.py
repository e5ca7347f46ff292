"""Benchmark: the profile checks over many normal simulated nights (false blocks), every delivery fault
(recall per kind), and what the checks cost next to the quality gate's SQL floor.

    .venv/bin/python bench/bench_profile_checks.py [--nights 91] [--scale 0.05] [--rows 1000000]

1. Simulates `nights` + 1 days (weekday pattern, trend, the simulator's usual row defects) and loads them
   night after night without Great Expectations or dbt: only the loader, its batch rules and the profile
   checks. A night blocked by a profile check is a false block (the simulator made no delivery fault).
2. On the last day, each delivery fault in turn on every feed it applies to, loaded over the good day:
   caught = blocked, or its rows quarantined (a row-level fault); the file is then restored and the clean
   day loaded again.
3. Cost on `rows` synthetic incidents: the gate's SQL floor (bench_quality.sql_floor) and the profile
   (computing the day's profile plus the checks against 28 days of history), best of three.
Not a test: it prints numbers (targets: 0 false blocks; profile cost within 1.5x of the SQL floor).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

START = date(2025, 1, 6)  # a Monday


def _env(home: Path) -> None:
    os.environ["PINGAN_HOME"] = str(home)
    for var in (
        "PINGAN_LAKE_URL",
        "PINGAN_LANDING_URL",
        "PINGAN_S3_ENDPOINT",
        "PINGAN_QINGPU_FIRE_URL",
        "PINGAN_PINGHU_JINSHAN_URL",
        "PINGAN_QINGPU_FIRE_TOKEN",
        "PINGAN_QINGPU_TAX_DB_URL",
    ):
        os.environ.pop(var, None)


def profile_failures(result) -> list[str]:
    return [f.cause for f in result.manifest.quality.batch_failures if f.rule.startswith("profile:")]


def normal_nights(settings, lake, specs, days: list[date]) -> tuple[Counter, list[str], list[str]]:
    """Load every feed night after night; (outcomes, profile blocks = false blocks, other blocks)."""
    from pingan.core.deployment import feed_sources
    from pingan.ingest.load import ingest_feed

    outcomes, false_blocks, other = Counter(), [], []
    with feed_sources(settings, list(specs.values())):
        for day in days:
            for spec in specs.values():
                try:
                    result = ingest_feed(spec, day, settings, lake, force=True)
                except Exception as exc:  # noqa: BLE001 - a bench reports, it does not stop
                    outcomes["failed"] += 1
                    other.append(f"{spec.feed} {day}: failed: {type(exc).__name__}: {exc}")
                    continue
                outcomes[result.status] += 1
                if result.status == "blocked":
                    profile = profile_failures(result)
                    false_blocks += profile
                    other += [] if profile else [result.manifest.error or "?"]
    return outcomes, false_blocks, other


def closest_calls(lake, specs) -> list[str]:
    """How near the normal nights came to the volume and event-shift limits (margin to a false block)."""
    from pingan.core.feed_spec import ProfilePolicy
    from pingan.quality import profile as profiles
    from pingan.quality.profile_checks import best_shift, expected_rows, rows_per_record, volume_range

    lines = []
    for spec in specs.values():
        policy: ProfilePolicy = spec.profile
        days = profiles.day_profiles(lake, spec.feed)
        ratios, evidence = [], []
        for i, day in enumerate(days):
            hist = days[max(0, i - policy.history_days) : i]
            if len(hist) < policy.learning_days:
                continue
            if not day.first_pull and [p for p in hist if not p.first_pull]:
                expected, spread = expected_rows(day, hist)
                low, high = volume_range(expected, spread, policy, rows_per_record(spec))
                ratios.append(min(day.rows_read / low if low > 0 else 9, high / max(day.rows_read, 1)))
            past = [p.event_histogram for p in hist if len(p.event_histogram) == 24 and p.event_rows]
            if len(day.event_histogram) == 24 and day.event_rows >= policy.event_min_rows and len(past) >= 3:
                shift, ev = best_shift(day.event_histogram, [sum(h) for h in zip(*past, strict=True)])
                if abs(shift) >= policy.event_shift_hours:
                    evidence.append(ev)
        warn = " (volume warns only)" if "volume" in policy.warn else ""
        lines.append(
            f"  {spec.feed:34s}{warn} volume margin {min(ratios, default=float('nan')):.2f}x, "
            f"largest shift evidence {max(evidence, default=0):.1f} (blocks at {policy.event_shift_evidence})"
        )
    return lines


def caught(kind: str, result, good) -> bool:
    """Whether a load of a faulty delivery did what the fault calls for (see pingan_sim.delivery_faults)."""
    from pingan_sim.delivery_faults import FORMAT_EDGES

    cleaned = (*FORMAT_EDGES, "full_width_id", "lowercase_check_x")  # loaded as if the fault were not there
    rules = result.quarantine_by_rule if result is not None else {}
    if result is None or result.status == "blocked":  # failed or blocked: the good day stays
        return kind not in cleaned
    if kind == "ten_rows_2035":
        return rules.get("event_time_outside_window", 0) > 0
    if kind == "correction_file":
        return rules.get("conflicting_record", 0) > 0
    if kind in cleaned:
        return result.rows_written == good.rows_written and result.rows_quarantined == good.rows_quarantined
    return rules.keys() - good.quarantine_by_rule.keys() != set()  # a row fault: its rows quarantined


def fault_recall(settings, lake, specs, day: date, home: Path) -> dict[str, Counter]:
    from pingan.core.deployment import feed_sources
    from pingan.core.storage import open_store
    from pingan.ingest.load import ingest_feed
    from pingan_sim.delivery_faults import FAULTS, NotApplicable, deliver_fault, restore_delivery

    def load(spec):
        with feed_sources(settings, [spec]):  # fresh servers: they cache the files they serve
            return ingest_feed(spec, day, settings, lake, force=True)

    landing = open_store(settings.landing_url)
    recall: dict[str, Counter] = defaultdict(Counter)
    for spec in specs.values():
        good = load(spec)
        for kind in FAULTS:
            try:
                deliver_fault(home, landing, spec, day, kind)
            except NotApplicable:
                continue
            try:
                result = load(spec)
            except Exception:  # noqa: BLE001 - a load that fails keeps the good day too
                result = None
            finally:
                restore_delivery(home, landing, spec, day)
            ok = caught(kind, result, good)
            recall[kind]["caught" if ok else "missed"] += 1
            if not ok:
                print(
                    f"  missed: {kind} on {spec.feed}: {result.status if result else 'failed'} "
                    f"{dict(result.quarantine_by_rule) if result else ''}",
                    flush=True,
                )
            good = load(spec)
    return recall


def cost(rows: int) -> tuple[float, float]:

    from bench_quality import best_of, make_incidents, sql_floor

    from pingan.core.feed_spec import load_specs
    from pingan.quality import profile as profiles
    from pingan.quality.profile_checks import Delivery, judge_delivery

    table = make_incidents(rows)
    spec = load_specs(ROOT / "connectors")["qingpu_110_incidents"]
    floor, _ = sql_floor(table, 3)
    day = date(2025, 6, 1)
    full = profiles.compute_day_profile(spec, day, "b", table, rows_read=rows, sources=[], missing_columns=[])
    hist = [  # 28 days of the same size: the checks compare the new day's ids with each of them
        full.model_copy(
            update={"load_date": day - timedelta(days=i), "weekday": (day - timedelta(days=i)).weekday()}
        )
        for i in range(28, 0, -1)
    ]

    import pyarrow.parquet as pq

    written = Path(tempfile.mkdtemp(prefix="bench-profile-cost-")) / "part-00000.parquet"
    pq.write_table(table, written)

    from pingan.core.storage import open_store
    from pingan.quality.profile_input import from_batch_file

    folder = open_store(f"file://{written.parent}")

    def run():  # as the load does it: the batch's raw file read column by column as profiled, judged
        rows_back = from_batch_file(folder, written.name, profiles.DISTINCT_SAMPLE)
        new = profiles.compute_day_profile(
            spec, day, "b", rows_back, rows_read=rows, sources=[], missing_columns=[]
        )
        return judge_delivery(spec, Delivery(new, list(spec.columns), []), hist, hist)

    elapsed, _ = best_of(3, run)
    return floor, elapsed


def print_cost(rows: int) -> None:
    floor, profile = cost(rows)
    print(
        f"cost on {rows:,} rows: SQL floor {floor:.2f}s, profile (read from the file) + checks {profile:.2f}s, "
        f"gate floor with profile {(floor + profile) / floor:.2f}x the floor (target <= 1.5x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=91)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the cost measurement (0: skip)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--cost-only", action="store_true", help="only the cost against the SQL floor")
    args = parser.parse_args()
    if args.cost_only:
        print_cost(args.rows)
        return
    home = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    _env(home)
    from pingan.core.feed_spec import load_specs
    from pingan.core.settings import load_settings
    from pingan.core.storage import open_store
    from pingan_sim import simulate

    days = [START + timedelta(days=i) for i in range(args.nights + 1)]
    landing = open_store(f"file://{home / 'sim'}")
    landing.ensure()
    t0 = time.perf_counter()
    simulate(home, landing, days[0], days[-1], seed=args.seed, scale=args.scale, defect_rate=0.02)
    print(f"simulated {len(days)} days at scale {args.scale} in {time.perf_counter() - t0:.0f}s", flush=True)
    settings = load_settings()
    lake = open_store(settings.lake_url)
    lake.ensure()
    specs = load_specs(settings.connectors_dir)
    t0 = time.perf_counter()
    outcomes, false_blocks, other = normal_nights(settings, lake, specs, days[:-1])
    elapsed = time.perf_counter() - t0
    print(f"{args.nights} normal nights x {len(specs)} feeds in {elapsed:.0f}s: {dict(outcomes)}")
    print(f"false blocks by the profile checks: {len(false_blocks)} (target 0)")
    for cause in false_blocks[:20]:
        print(f"  {cause}")
    print(f"blocked by the other batch rules (not profile checks): {len(other)}")
    for cause in sorted(set(other))[:5]:
        print(f"  {cause}")
    print("closest calls on normal nights (volume: observed/limit, 1.00 = at the limit):")
    print("\n".join(closest_calls(lake, specs)))
    recall = fault_recall(settings, lake, specs, days[-1], home)
    print("recall per delivery fault (caught/applicable):")
    for kind, c in sorted(recall.items()):
        n = c["caught"] + c["missed"]
        print(f"  {kind:28s} {c['caught']}/{n}  {c['caught'] / n:.0%}")
    if args.rows:
        print_cost(args.rows)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
