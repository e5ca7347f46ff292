"""Whole-night benchmark: tonight's night as `pingan run` runs it (ingest with the quality gate and the feed
profile, warehouse build, share publication) after 1 week and after 2 years of history, in the same run,
side by side: each stage's time, the night's total, peak RSS, the 10 slowest dbt nodes, the bytes a partner
(Wujiang) downloads for the night, and the ratio 2 years / 1 week (target <= 1.2x for the night and every
stage). Prints numbers; not a test.

Data: 8 simulated days of every feed (`--scale`; 5 jurisdictions) are written as the simulator's source
systems; days 1-7 are ingested through the real loader (gate off, as bench_warehouse's seed: the seed is
not measured; the feed profile stores each day), day 8 stays in the source systems only: it is "tonight",
not yet committed when the night starts (a first load of the day, not a rerun). The 2-year home is a copy
of the 1-week home whose history is extended backwards: every seed batch (but the registry's first full
pull) is replicated in whole weeks before the seed (so weekdays keep their rhythm) with shifted dates and
fresh ids (bench_warehouse.shifted), and so is its feed's stored day profile (`_quality/profiles/<feed>/
load_date=D.json`, load_date and batch_id shifted), so the profile stage sees 2 years of stored days.
Stored quality results are not replicated.

Before the night, each home is fully built as of yesterday, published once (so the night's publication is
incremental) and pulled once by the partner (so the night's pull is incremental); that state is kept aside
(`<home>.pre-night`) and restored before each measured night. The night runs in a child process (its own
peak RSS) with the pipeline's own functions (pingan.orchestration.pipeline: ingest_day, build_warehouse,
publish_shares: what run_day calls), each timed; then the partner's `pull` of the night is timed and its
bytes counted. Homes are cached under var/bench/night (delete it to regenerate).

    .venv/bin/python bench/bench_night.py [--years 2] [--scale 0.1] [--repeat 1] [--work var/bench/night]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_warehouse as bw  # noqa: E402

from pingan import raw_zone  # noqa: E402
from pingan.core.canonical import entity_schema  # noqa: E402
from pingan.core.storage import Store, lake_store  # noqa: E402

TONIGHT = bw.SEED_START + timedelta(days=bw.SEED_DAYS - 1)
PARTNER = "wujiang"
STAGES = ("ingest", "build", "publish")


def seed_week(work: Path, scale: float):
    """8 simulated days of source systems; the first 7 loaded through the real loader, the 8th left for tonight."""
    home = work / "week"
    settings = bw.settings_for(home)
    if (home / ".seeded").exists():
        return settings
    from pingan.orchestration.pipeline import ingest_day
    from pingan_sim import simulate

    shutil.rmtree(home, ignore_errors=True)
    landing = Store(settings.landing_url)
    landing.ensure()
    t = time.monotonic()
    simulate(settings.home, landing, bw.SEED_START, TONIGHT, seed=42, scale=scale, defect_rate=0.01)
    day = bw.SEED_START
    while day < TONIGHT:
        ingest_day(settings, day, gate=False)
        day += timedelta(days=1)
    print(f"seeded {bw.SEED_DAYS - 1} days at scale {scale:g} in {time.monotonic() - t:.0f} s", flush=True)
    (home / ".seeded").touch()
    return settings


def extend_history(work: Path, week, days: int):
    """A copy of the week home with `days` days of history before tonight: the seed's weeks replicated backwards."""
    home = work / f"history-{days}d"
    if (home / ".seeded").exists():
        return bw.settings_for(home)
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(week.home, home, symlinks=True)
    settings = bw.settings_for(home)
    lake = lake_store(settings)
    first = TONIGHT - timedelta(days=days)
    t = time.monotonic()
    written = 0
    for b in raw_zone.committed_batches(lake):
        if b.entity == "enterprise" and b.load_date == bw.SEED_START:
            continue  # the registry's first full pull happens once; later days are its changes
        table = lake.read_parquet([lake.key_of(uri) for uri in b.files]).cast(entity_schema(b.entity))
        profile = _stored_profile(lake, b.feed, b.load_date)
        day = b.load_date - timedelta(days=7)
        while day >= first:
            _replicate(lake, b, table, profile, day)
            written += 1
            day -= timedelta(days=7)
    print(
        f"extended to {days} days of history ({written:,} batches) in {time.monotonic() - t:.0f} s",
        flush=True,
    )
    (home / ".seeded").touch()
    return settings


def _stored_profile(lake: Store, feed: str, day: date):
    from pingan.quality.profile import day_profiles

    return next((p for p in day_profiles(lake, feed, day, 0) if p.load_date == day), None)


def _replicate(lake: Store, b, table, profile, day: date) -> None:
    """Batch `b` committed again on `day` (shifted dates, fresh ids), with its day profile."""
    from pingan.quality.profile import store_day_profile

    shift = (day - b.load_date).days
    batch_id = f"bench-{day:%Y%m%d}-{b.feed}"
    key = (
        raw_zone.batch_prefix("raw", b.entity, b.jurisdiction_code, day, b.feed, batch_id)
        + "part-00000.parquet"
    )
    lake.write_parquet(key, bw.shifted(table, b.entity, shift, f"~{day:%Y%m%d}", batch_id, day))
    raw_zone.commit(lake, raw_zone.Manifest(
        feed=b.feed, entity=b.entity, jurisdiction_code=b.jurisdiction_code, load_date=day,
        batch_id=batch_id, status="committed", rows_read=table.num_rows, rows_written=table.num_rows,
        files={"raw": [key], "quarantine": []},
    ))  # fmt: skip
    if profile is not None:
        store_day_profile(
            lake,
            profile.model_copy(update={"load_date": day, "batch_id": batch_id, "weekday": day.weekday()}),
        )


def prepare_pre_night(settings, label: str) -> None:
    """Yesterday's full build (and the build after it), a first publication and a first pull of the partner;
    kept as <home>.pre-night."""
    from pingan.orchestration.pipeline import build_warehouse, publish_shares
    from pingan.sharing.partner import load_profile, pull
    from pingan.sharing.provision import provision
    from pingan.sharing.publish import share_store

    kept = _pre_night(settings)
    if kept.is_dir():
        return
    yesterday = TONIGHT - timedelta(days=1)
    t = time.monotonic()
    build_warehouse(settings, full_refresh=True, build_date=yesterday)
    built = time.monotonic() - t
    # a second build, as the night before tonight's: the spare slot then holds the full refresh's generation
    # (warehouse/slots.py), so tonight builds in place as every night after the first does, not on a copy
    build_warehouse(settings, build_date=yesterday)
    publish_shares(settings, yesterday)
    provision(settings, share_store(settings), backend="none")
    pulled = pull(load_profile(_partner_profile(settings)), _partner_dest(settings))
    batches = raw_zone.committed_batches(lake_store(settings))
    size = settings.warehouse_path.resolve().stat().st_size
    print(
        f"{label}: {len(batches):,} batches, {sum(b.rows for b in batches):,} raw rows; full build {built:.0f} s, "
        f"warehouse {size / 2**20:,.0f} MiB; first pull {sum(p.bytes_downloaded for p in pulled):,} bytes; "
        f"set up in {time.monotonic() - t:.0f} s",
        flush=True,
    )
    shutil.copytree(settings.home, kept.with_suffix(".tmp"), symlinks=True)
    kept.with_suffix(".tmp").rename(kept)


def _pre_night(settings) -> Path:
    return settings.home.with_name(settings.home.name + ".pre-night")


def _partner_profile(settings) -> Path:
    return settings.home / "partners" / PARTNER / "pull-profile.json"


def _partner_dest(settings) -> Path:
    return settings.home / "partner-pull"


def night(settings, label: str) -> dict:
    """Tonight's whole night from the pre-night state, in a child process; then the partner's pull."""
    from pingan.sharing.partner import load_profile, pull

    shutil.rmtree(settings.home)
    shutil.copytree(_pre_night(settings), settings.home, symlinks=True)
    # the copy gives every file a new inode, which the manifest index (raw_zone/manifest_index.py) takes
    # for a changed manifest: one reading here restores a real hub's state, an index valid up to yesterday
    raw_zone.committed_manifest_records(lake_store(settings))
    # the copy leaves its data (0.6 GB at two years) dirty in the page cache: flushed during the night, it
    # would slow the night's own fsyncs by the size of the copy, a cost of the bench and not of the night
    os.sync()
    load = os.getloadavg()[0]
    child = subprocess.run(
        [sys.executable, __file__, "--night-of", str(settings.home)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    read_bytes = _counting_reads()
    t = time.monotonic()
    try:
        pulled = pull(load_profile(_partner_profile(settings)), _partner_dest(settings))
    finally:
        Store.get_bytes = read_bytes.original
    result["pull_s"] = time.monotonic() - t
    result["pull_read_bytes"] = read_bytes.total
    result["pull_bytes"] = sum(p.bytes_downloaded for p in pulled)
    result["pull_files"] = sum(p.files_downloaded for p in pulled)
    result["manifest_bytes"] = sum(p.manifest_bytes for p in pulled)
    result["pull_by_dataset"] = {p.dataset: [p.files_downloaded, p.bytes_downloaded] for p in pulled}
    result["load"] = load
    print(
        f"  {label}: night {result['seconds']:.1f} s ("
        + ", ".join(f"{s} {result[s]:.1f} s" for s in STAGES)
        + f"), peak RSS {result['rss_mib']:.0f} MiB, pull {result['pull_bytes']:,} bytes, load {load:.1f}; "
        f"feeds: {result['feeds']}",
        flush=True,
    )
    return result


class _ReadBytes:
    """Every byte read from any store while installed (Store.get_bytes): what a pull costs the network."""

    def __init__(self):
        self.total, self.original = 0, Store.get_bytes

    def __call__(self, store: Store, key: str):
        data = self.original(store, key)
        self.total += len(data or b"")
        return data


def _counting_reads() -> _ReadBytes:
    counter = _ReadBytes()
    Store.get_bytes = lambda store, key: counter(store, key)
    return counter


def night_of(home: Path) -> None:
    """(child process) Tonight's night at `home`, stage by stage; prints one JSON line."""
    from collections import Counter

    from pingan.orchestration.pipeline import build_warehouse, ingest_day, publish_shares
    from pingan.sharing.publish import SharesHeldBack

    settings = bw.settings_for(home)
    out: dict = {}
    parts = _time_build_warehouse_parts()
    t0 = time.monotonic()
    feeds = ingest_day(settings, TONIGHT)
    t1 = time.monotonic()
    build = build_warehouse(settings, build_date=TONIGHT)
    t2 = time.monotonic()
    try:
        shares = publish_shares(settings, TONIGHT)
    except SharesHeldBack as held:  # the PII guard held a dataset back: the others were published (and timed)
        shares, out["held_back"] = held.published, held.held_back
    t3 = time.monotonic()
    out["ingest"], out["build"], out["publish"], out["seconds"] = t1 - t0, t2 - t1, t3 - t2, t3 - t0
    out["feeds"] = dict(
        Counter(str(f.status.value if hasattr(f.status, "value") else f.status) for f in feeds)
    )
    out["feed_seconds"] = {f.feed: _load_seconds(f.result.manifest) for f in feeds if f.result is not None}
    out["stages"] = build.stage_seconds | parts
    out["shares"] = len(shares)
    out["slowest"] = bw.slowest_dbt_nodes(settings.home)
    out["rss_mib"] = bw.peak_rss_mib()
    print(json.dumps(out))


def _time_build_warehouse_parts() -> dict[str, float]:
    """Wrap the steps build_warehouse runs after build() (lineage, restricted tier, lake retention) so that
    each adds its wall time to the returned dict: the pipeline's own functions, timed, not re-implemented."""
    from pingan.ops import lineage_events
    from pingan.orchestration import pipeline
    from pingan.warehouse import restricted

    parts: dict[str, float] = {}

    def timed(owner, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.monotonic()
            try:
                return inner(*args, **kwargs)
            finally:
                parts[label] = parts.get(label, 0.0) + time.monotonic() - t

        setattr(owner, name, wrapper)

    timed(lineage_events, "emit_dbt_build", "(after build) lineage")
    timed(restricted, "build_restricted", "(after build) restricted tier")
    timed(pipeline, "_lake_retention", "(after build) lake retention")
    return parts


def _load_seconds(manifest) -> float:
    """A feed's load time, from its manifest's instants."""
    from datetime import datetime

    if not (manifest.started_at and manifest.finished_at):
        return 0.0
    return (
        datetime.fromisoformat(manifest.finished_at) - datetime.fromisoformat(manifest.started_at)
    ).total_seconds()


def _row(name: str, a: float, b: float, unit: str = "s", target: bool = True) -> str:
    ratio = b / a if a else float("nan")
    fmt = "{:>11,.0f}" if unit == "B" else "{:>10.2f}" + unit
    return f"{name:40}{fmt.format(a)}{fmt.format(b)}{ratio:>8.2f}x" + ("  (target <= 1.2x)" if target else "")


def print_nights(short: dict, long: dict, years: float) -> None:
    """The two nights side by side: each stage, the build's stages, the night, the pull, RSS, slowest nodes."""
    print(f"\n{'':40}{'1 week':>11}{f'{years:g} years':>11}{'ratio':>9}")
    print(_row("ingest (gate, profile)", short["ingest"], long["ingest"]))
    for feed in sorted({*short.get("feed_seconds", {}), *long.get("feed_seconds", {})}):
        a, b = short.get("feed_seconds", {}).get(feed, 0.0), long.get("feed_seconds", {}).get(feed, 0.0)
        print(_row(f"  {feed}", a, b, target=False))
    print(_row("build", short["build"], long["build"]))
    for stage in dict.fromkeys([*short["stages"], *long["stages"]]):
        a, b = short["stages"].get(stage, 0.0), long["stages"].get(stage, 0.0)
        print(_row(f"  {stage}", a, b, target=False))
    print(_row("publish", short["publish"], long["publish"]))
    print(_row("whole night", short["seconds"], long["seconds"]))
    print(_row("partner pull (data bytes)", short["pull_bytes"], long["pull_bytes"], "B"))
    for dataset in sorted({*short.get("pull_by_dataset", {}), *long.get("pull_by_dataset", {})}):
        (fa, a), (fb, b) = (n.get("pull_by_dataset", {}).get(dataset, (0, 0)) for n in (short, long))
        print(_row(f"  {dataset} ({fa} / {fb} files)", a, b, "B", target=False))
    print(_row("  manifests (bytes)", short["manifest_bytes"], long["manifest_bytes"], "B", target=False))
    if "pull_read_bytes" in short and "pull_read_bytes" in long:  # pointers, manifests, sources, data files
        print(_row("  every byte the pull read", short["pull_read_bytes"], long["pull_read_bytes"], "B",
                   target=False))  # fmt: skip
    print(_row("  pull time", short["pull_s"], long["pull_s"], target=False))
    print(f"{'peak RSS':40}{short['rss_mib']:>8.0f}MiB{long['rss_mib']:>8.0f}MiB{'':9}  (target < 1024 MiB)")
    print(
        f"load average (1 min) at the nights' start: {short['load']:.1f} / {long['load']:.1f} on {os.cpu_count()} cores"
    )
    for label, n in (("1 week", short), (f"{years:g} years", long)):
        print(f"10 slowest dbt nodes, {label}:")
        for name, seconds in n["slowest"]:
            print(f"  {seconds:6.2f} s  {name}")


def print_spread(nights: dict[str, list[dict]], long_label: str) -> None:
    """Each stage over every night measured, not only the fastest whole night's: a stage's minimum is its
    cost least disturbed by the machine (another stage's stall makes a night slow, not this stage), the
    median what a typical night saw."""
    count = len(nights["short"])
    print(f"\neach stage over the {count} nights of each size: min and median, 1 week / {long_label} (ratio)")
    for stage in (*STAGES, "seconds"):
        a = sorted(n[stage] for n in nights["short"])
        b = sorted(n[stage] for n in nights["long"])
        low, mid = (a[0], b[0]), (statistics.median(a), statistics.median(b))
        print(f"  {'whole night' if stage == 'seconds' else stage:22} min {low[0]:6.2f} / {low[1]:6.2f} s "
              f"({low[1] / low[0]:.2f}x)   median {mid[0]:6.2f} / {mid[1]:6.2f} s ({mid[1] / mid[0]:.2f}x)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--years", type=float, default=2.0)
    ap.add_argument(
        "--scale", type=float, default=0.1, help="Simulator scale (1 = the districts' real volumes)."
    )
    ap.add_argument("--repeat", type=int, default=1, help="Nights measured per size (the fastest counts).")
    ap.add_argument("--work", type=Path, default=bw.ROOT / "var" / "bench" / "night")
    ap.add_argument(
        "--prepare-only", action="store_true", help="Build the pre-night states, measure nothing."
    )
    ap.add_argument("--night-of", type=Path, help=argparse.SUPPRESS)  # the child process of night()
    args = ap.parse_args()
    if args.night_of:
        night_of(args.night_of)
        return
    import logging

    logging.disable(logging.WARNING)
    work = args.work / f"scale-{args.scale:g}"
    work.mkdir(parents=True, exist_ok=True)
    week = seed_week(work, args.scale)
    history = extend_history(work, week, int(365 * args.years))
    long_label = f"{args.years:g} years"
    prepare_pre_night(week, "1 week")
    prepare_pre_night(history, long_label)
    if args.prepare_only:
        return
    nights: dict[str, list[dict]] = {"short": [], "long": []}
    for _ in range(args.repeat):  # alternating: the machine's load varies more than the night
        nights["short"].append(night(week, "1 week"))
        nights["long"].append(night(history, long_label))
    short = min(nights["short"], key=lambda n: n["seconds"])
    long = min(nights["long"], key=lambda n: n["seconds"])
    short["rss_mib"] = max(n["rss_mib"] for n in nights["short"])
    long["rss_mib"] = max(n["rss_mib"] for n in nights["long"])
    (work / "nights.json").write_text(json.dumps({"short": short, "long": long}, indent=1), encoding="utf-8")
    print(f"scale {args.scale:g} (the nights' numbers: {work / 'nights.json'})")
    print_nights(short, long, args.years)
    if args.repeat > 1:
        print_spread(nights, long_label)


if __name__ == "__main__":
    main()
