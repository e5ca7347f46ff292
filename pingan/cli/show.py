"""What happened: status, quality, report, lineage, feeds."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from pingan.cli.console import date_option, out
from pingan.core.settings import load_settings
from pingan.core.status import ALARM_STATUSES

if TYPE_CHECKING:
    from pingan.ops.status import StatusReport


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON: per feed, its batches and row counts.")
def status(as_json: bool) -> None:
    """What was loaded, when, how many rows, what was quarantined."""
    from pingan.core.storage import lake_store
    from pingan.ops.status import status_report

    settings = load_settings()
    report = status_report(settings, lake_store(settings))
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2, default=str))
        return
    _print_status(report)


def _print_status(report: StatusReport) -> None:
    table = Table(
        "feed",
        "days",
        "last day",
        "rows written",
        "quarantined",
        "blocked",
        "failed or late",
        "freshness",
        title=f"lake {report.lake}",
    )
    for feed, f in report.feeds.items():
        problems = ", ".join(f"{d} {p.status}" for d, p in f.problem_days.items())
        table.add_row(
            feed,
            str(f.days_committed),
            f.last_load_date or "-",
            f"{f.rows_written:,}",
            f"{f.rows_quarantined:,}",
            ", ".join(f.blocked_days) or "-",
            problems or "-",
            _freshness(f.freshness),
        )
    out.print(table)
    for feed, f in report.feeds.items():
        for d, p in f.problem_days.items():
            out.print(f"{feed} {d}: {p.status}: {p.error}", highlight=False, soft_wrap=True)
    for b in report.broken_specs:
        out.print(f"[red]feed spec does not load[/] ({b.feed}): {b.error}", highlight=False, soft_wrap=True)
    for h in report.held_back_shares:
        out.print(f"[red]held back[/] {h.describe()}", highlight=False, soft_wrap=True)
    for a in report.alerts:
        label = "[red]alert[/]"
        if a.kind == "retry":
            label = f"[yellow]retried[/] (try {a.try_number} failed)"
        out.print(
            f"{label} {a.raised_at[:19]} {a.dag_id}.{a.task_id} ({a.run_id}): {a.error}",
            highlight=False,
            soft_wrap=True,
        )
    out.print(
        f"warehouse: {report.warehouse} ({'published' if report.warehouse_exists else 'not built yet'})"
    )


def _freshness(f: dict | None) -> str:
    """As the last published build judged it against its logical date."""
    if not f:
        return "-"
    if f["latest_load_date"] is None:
        return f"[red]stale: never loaded[/] (build {f['build_date']})"
    if f["is_stale"]:
        return f"[red]stale: {f['lag_days']} d behind[/] build {f['build_date']}"
    return f"fresh (build {f['build_date']})"


@click.command()
@click.option("--feed", help="Only this feed.")
@click.option("--since", callback=date_option, help="Only load dates on or after this day (YYYY-MM-DD).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print per feed and day, and the reference orphans, as JSON."
)
def quality(feed: str | None, since: date | None, as_json: bool) -> None:
    """Quality per feed and day: rows read, committed, quarantined by rule, warnings, blocked with cause.

    `committed` is the rows of the day's committed batch: a blocked delivery leaves the previous one.
    Exit code 1 when a shown day's latest load was blocked, failed or interrupted.
    """
    from pingan.core.storage import lake_store
    from pingan.ops.status import reference_orphans
    from pingan.quality.overview import day_quality

    settings = load_settings()
    days = day_quality(lake_store(settings), feed, since)
    orphans = reference_orphans(settings)
    if as_json:
        data = {"days": [asdict(d) for d in days], "reference_orphans": [asdict(o) for o in orphans]}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        _print_quality(days, orphans)
    if any(d.status in ALARM_STATUSES for d in days):
        sys.exit(1)


def _print_quality(days, orphans) -> None:
    from pingan.quality.overview import top_rules

    table = Table("feed", "day", "status", "read", "committed", "quarantined", "top rules", "warned")
    for d in days:
        style = "red" if d.status in ALARM_STATUSES else None
        table.add_row(
            d.feed,
            d.load_date,
            d.status,
            f"{d.rows_read:,}",
            f"{d.rows_committed:,}",
            f"{d.rows_quarantined:,}",
            top_rules(d.quarantine_by_rule),
            ", ".join(d.warnings) or "-",
            style=style,
        )
    out.print(table)
    for d in days:
        if d.cause:
            out.print(f"{d.feed} {d.load_date} {d.status}: {d.cause}", highlight=False, soft_wrap=True)
    for o in orphans:  # a finding that repeats every night: once, with its count
        out.print(f"reference orphans: {o.describe()}", highlight=False, soft_wrap=True)


@click.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write the page (default: $PINGAN_HOME/report/index.html).",
)
@click.option("--no-data-docs", is_flag=True, help="Do not (re)build the Great Expectations Data Docs first.")
def report(output: str | None, no_data_docs: bool) -> None:
    """Write one static HTML page on the lake's quality: per feed, freshness, rows and quarantine per day
    as charts, top rules, blocked days, and links to the Data Docs and dbt docs. Opens in any browser."""

    from pingan.core.storage import lake_store
    from pingan.ops.status import reference_orphans
    from pingan.quality.report import write_report

    settings = load_settings()
    standing = [f"Reference orphans: {o.describe()}" for o in reference_orphans(settings)]
    path = write_report(
        settings,
        lake_store(settings),
        Path(output) if output else None,
        build_docs=not no_data_docs,
        standing=standing,
    )
    out.print(f"report: {path}", highlight=False)


@click.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the chain as JSON.")
def lineage(target: str, as_json: bool) -> None:
    """Trace a warehouse table (e.g. fct_incidents) or a share (PARTNER/DATASET) back to its source files.

    Prints share snapshot → table → dbt models → raw batches → source files (with sha256), from the
    share's signed manifest, dbt's manifest of the last build and the raw zone's commit manifests.
    """
    from dataclasses import asdict

    from pingan.core.storage import lake_store
    from pingan.ops.lineage import as_text, trace

    settings = load_settings()
    chain = trace(settings, lake_store(settings), target)
    if as_json:
        click.echo(json.dumps(asdict(chain), ensure_ascii=False, indent=2, default=str))
        return
    for line in as_text(chain):
        out.print(line, highlight=False, soft_wrap=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as JSON.")
def feeds(as_json: bool) -> None:
    """List and validate the feed specs under connectors/."""
    from pingan.core.feed_spec import load_specs

    settings = load_settings()
    specs = load_specs(settings.connectors_dir)
    if as_json:
        rows = [
            {"feed": f, "jurisdiction_code": s.jurisdiction_code, "entity": s.entity,
             "transport": s.transport.kind, "format": s.format.kind, "spec": os.path.relpath(s.path)}
            for f, s in sorted(specs.items())
        ]  # fmt: skip
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("feed", "jurisdiction", "entity", "transport", "format", "spec")
    for feed, s in sorted(specs.items()):
        table.add_row(
            feed, s.jurisdiction_code, s.entity, s.transport.kind, s.format.kind, os.path.relpath(s.path)
        )
    out.print(table)
