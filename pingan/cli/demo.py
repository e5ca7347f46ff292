"""`pingan demo` (registered by pingan_sim): run every day of a simulated range, say what happened and what to
run next. The simulation itself is the sim package's; this module knows only the days' results.

Running it twice is safe and says what it does: on a home that already holds a run, the demo starts over
(the lake, warehouse, restricted tier and shares of the local home are removed first; keys and the
simulated sources stay), so the second run reports what the first did. Any ERROR logged during the run
makes the command exit non-zero after its summary.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from pingan import raw_zone
from pingan.core.settings import Settings
from pingan.core.status import BatchStatus
from pingan.core.storage import lake_store, open_store
from pingan.orchestration.pipeline import DayResult, run_day

ANALYST_QUERY = (
    "select jurisdiction_code, count(*) as incidents from fct_incidents group by all order by incidents desc"
)


@dataclass
class DemoSummary:
    start: date
    end: date
    simulated: dict[str, int]
    days: list[DayResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # every ERROR logged during the run


class DemoFailed(click.ClickException):
    """The demo ran to its summary but something logged an ERROR: exit 1."""


class _ErrorCollector(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def start_over(settings: Settings) -> str | None:
    """Clear what an earlier demo left in this local home, so a rerun starts over; what it did, or None.

    Only a local home's own files are touched: a lake or share store elsewhere (S3) is refused."""
    lake = lake_store(settings)
    batches = raw_zone.committed_manifest_records(lake)
    if not batches:
        return None
    shares = open_store(settings.share_url, settings.s3)
    if lake.scheme != "file" or shares.scheme != "file":
        raise click.ClickException(
            f"{lake.url} already holds {len(batches)} committed batch(es) and is not a local demo lake: "
            "the demo will not clear it (use an empty PINGAN_HOME)"
        )
    warehouse = settings.warehouse_path
    doomed = [
        lake.root,
        shares.root,
        settings.home / "restricted.duckdb",
        warehouse.with_name(warehouse.name + ".build.lock"),
    ]
    doomed += list(warehouse.parent.glob(warehouse.stem + "*.duckdb"))  # published file and its slots
    removed = []
    for path in dict.fromkeys(doomed):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_symlink() or path.exists():  # the published warehouse is a link to a slot
            path.unlink()
        else:
            continue
        removed.append(path)
    newest = max(b.load_date for b in batches)
    return (
        f"this home already holds a run ({len(batches)} committed batches through {newest}): starting over "
        f"(removed {_names(removed, settings.home)}; keys and simulated sources kept)"
    )


def _names(paths: list[Path], home: Path) -> str:
    return ", ".join(sorted({str(p.relative_to(home)) if p.is_relative_to(home) else str(p) for p in paths}))


def run_demo(
    settings: Settings, start: date, end: date, simulated: dict[str, int], *, progress=None, detail=None
) -> DemoSummary:
    """Run every day of [start, end] whose sources were already written (`simulated`: records per feed).

    `progress` gets a line per day; `detail` (for --verbose) every step within them."""
    say = progress or (lambda _msg: None)
    cleared = start_over(settings)
    if cleared:
        say(cleared)
    lake_store(settings)
    summary = DemoSummary(start, end, simulated)
    collector = _ErrorCollector(summary.errors)
    logging.getLogger().addHandler(collector)
    try:
        day = start
        while day <= end:
            result = run_day(settings, day, progress=detail)
            summary.days.append(result)
            say(day_line(result))
            day += timedelta(days=1)
    finally:
        logging.getLogger().removeHandler(collector)
    return summary


def day_line(result: DayResult) -> str:
    """One line per night: loads, the build and the shares."""
    committed = [f for f in result.feeds if f.status == BatchStatus.COMMITTED]
    rows = sum(f.result.rows_written for f in committed if f.result)
    quarantined = sum(f.result.rows_quarantined for f in committed if f.result)
    others = Counter(str(f.status) for f in result.feeds if f.status != BatchStatus.COMMITTED)
    line = f"{result.day}: {len(committed)}/{len(result.feeds)} feeds committed ({rows:,} rows, {quarantined:,} quarantined"
    line += "".join(f", {n} {status}" for status, n in sorted(others.items())) + ")"
    if result.build is not None:
        line += f"; warehouse built in {result.build.elapsed_seconds:.1f} s"
        if result.build.stale_feeds:
            line += f" (stale: {', '.join(result.build.stale_feeds)})"
    return line + f"; {len(result.shares)} share snapshot(s) published"


def analyst_command(settings: Settings) -> str:
    return f'.venv/bin/duckdb -readonly {settings.warehouse_path} "{ANALYST_QUERY}"'


def print_summary(out: Console, settings: Settings, summary: DemoSummary) -> None:
    loaded: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    problems = []
    for day in summary.days:
        for f in day.feeds:
            if f.result and f.status == BatchStatus.COMMITTED:
                loaded[f.feed] += f.result.rows_written
                quarantined[f.feed] += f.result.rows_quarantined
            else:
                problems.append(f"{day.day} {f.feed}: {f.status} {f.error or ''}".strip())
    table = Table("feed", "rows loaded", "rows quarantined", title=f"demo {summary.start} .. {summary.end}")
    for feed in sorted(set(loaded) | set(quarantined) | {f.feed for d in summary.days for f in d.feeds}):
        table.add_row(feed, f"{loaded[feed]:,}", f"{quarantined[feed]:,}")
    out.print(table)
    for p in problems:
        out.print(f"[yellow]{p}[/]")
    last = summary.days[-1] if summary.days else None
    if last and last.build is not None:
        marts = getattr(last.build, "mart_rows", None) or {}
        out.print("marts built: " + ", ".join(f"{k} ({v:,} rows)" for k, v in sorted(marts.items())))
    shares = [s for d in summary.days for s in d.shares]
    latest: dict[tuple[str, str], object] = {}
    per_share: Counter[tuple[str, str]] = Counter()
    for s in shares:
        per_share[(s.partner, s.dataset)] += 1
        latest[(s.partner, s.dataset)] = s
    out.print(f"shares published: {len(shares)} snapshot(s)")
    for partner in sorted({p for p, _ in per_share}):
        datasets = sorted(d for p, d in per_share if p == partner)
        parts = ", ".join(f"{d} ({latest[(partner, d)].rows:,} rows)" for d in datasets)
        out.print(f"  {partner}: {parts}", highlight=False, soft_wrap=True)
    out.print(
        f"dbt log: {settings.home / 'dbt' / 'logs' / 'dbt.log'}; details with `pingan -v demo`",
        highlight=False,
    )
    out.print("\nNext, as an analyst (read-only, never blocked by the nightly build):")
    out.print(f"  {analyst_command(settings)}", highlight=False, soft_wrap=True)
    if summary.errors:  # after the summary, so what did work is still shown
        raise DemoFailed(
            f"{len(summary.errors)} ERROR(s) during the demo (above); first: {summary.errors[0]}"
        )
