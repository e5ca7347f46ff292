"""The `pingan` command: every stage of the nightly job, runnable without Airflow.

Heavy libraries (Great Expectations, dbt, Airflow) are imported inside commands, so `pingan --help`
stays fast. Errors print one line and where to look; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import date, timedelta

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pingan.settings import load_settings

# Piped output (CI logs, Airflow task logs) has no terminal width; rich would assume 80 columns and cut
# the tables. A real terminal keeps its own width.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
console = Console(stderr=True, width=_WIDTH)
out = Console(width=_WIDTH)


class PinganGroup(click.Group):
    """Turns any exception into one clear line (and exit code 1) unless --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            console.print("  (run with --debug for the traceback; `pingan status` shows what is loaded)")
            sys.exit(1)


def _date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _progress(msg: str) -> None:
    console.print(f"  [dim]{msg}[/]", highlight=False)


@click.group(cls=PinganGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Pingan: federate police, tax, fire, grid and partner feeds of the Yangtze River Delta.

    Storage comes from the environment: PINGAN_HOME (default ./var) holds the embedded default, a lake in
    var/lake and the analyst warehouse var/warehouse.duckdb; PINGAN_LAKE_URL=s3://bucket/prefix with
    PINGAN_S3_* puts the lake on MinIO/S3. Typical use: `pingan demo` (simulate a week and run it),
    `pingan run --date 2025-01-01`, `pingan status`.
    """
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)])
    for noisy in ("great_expectations", "urllib3", "botocore", "minio", "dbt", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--start", callback=_date, required=True, help="First simulated day (YYYY-MM-DD).")
@click.option("--end", callback=_date, help="Last simulated day (default: --start).")
@click.option("--seed", default=42, show_default=True, help="Same seed and arguments give identical files.")
@click.option("--scale", default=1.0, show_default=True, help="1.0 = a district's real daily volumes.")
@click.option("--defect-rate", default=0.01, show_default=True, help="Share of records with an injected defect.")
def simulate(start: date, end: date | None, seed: int, scale: float, defect_rate: float) -> None:
    """Write the simulated source systems under $PINGAN_HOME/sim (and the landing zone).

    Every feed in its native format; every injected defect is listed in sim/defects.jsonl.
    """
    from pingan_sim import simulate as run_simulation
    from pingan.storage import Store

    settings = load_settings()
    landing = Store(settings.landing_url, settings.s3)
    landing.ensure()
    counts = run_simulation(settings.home, landing, start, end or start, seed=seed, scale=scale,
                            defect_rate=defect_rate, progress=_progress)
    table = Table("feed", "rows", title=f"simulated {start} .. {end or start} (seed {seed}, scale {scale})")
    for feed, n in sorted(counts.items()):
        table.add_row(feed, f"{n:,}")
    out.print(table)


@main.command()
@click.option("--date", "day", callback=_date, required=True, help="Logical date to load (YYYY-MM-DD).")
@click.option("--feed", "feeds", multiple=True, help="Only this feed (repeatable). Default: all feeds.")
@click.option("--no-gate", is_flag=True, help="Skip the Great Expectations gate (not for production).")
@click.option("--force", is_flag=True, help="Reload an incremental feed's day even when later days are loaded.")
def ingest(day: date, feeds: tuple[str, ...], no_gate: bool, force: bool) -> None:
    """Load feeds for one logical date into the raw zone (idempotent: a rerun replaces that day)."""
    from pingan.pipeline import ingest_day, simulated_sources

    settings = load_settings()
    with simulated_sources(settings, list(feeds) or None):
        outcomes = ingest_day(settings, day, feeds=list(feeds) or None, gate=not no_gate, progress=_progress,
                              force=force)
    _print_outcomes(day, outcomes)
    if any(o.status in ("failed", "blocked") for o in outcomes):
        sys.exit(1)


@main.command()
@click.option("--feed", required=True, help="Feed id.")
@click.option("--date", "day", callback=_date, required=True, help="Load date of the stored batch.")
def validate(feed: str, day: date) -> None:
    """Re-run the quality gate on the committed batch of a feed and day; print the expectations' results."""
    from pingan import raw_zone
    from pingan.feed_spec import load_specs
    from pingan.pipeline import lake_store, quality_gate

    settings = load_settings()
    spec = load_specs(settings.connectors_dir)[feed]
    lake = lake_store(settings)
    manifest = raw_zone.committed_manifest(lake, feed, day)
    if manifest is None:
        raise click.ClickException(f"no committed batch for {feed} on {day} (see `pingan status`)")
    table = lake.read_parquet(manifest["files"]["raw"])
    verdict = quality_gate(settings)(spec, table)
    out.print_json(verdict.to_json())
    if not verdict.success:
        sys.exit(1)


@main.command()
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from the whole lake.")
def build(full_refresh: bool) -> None:
    """Build the governance warehouse with dbt from committed batches; publish it atomically."""
    from pingan.pipeline import build_warehouse

    result = build_warehouse(load_settings(), full_refresh=full_refresh)
    out.print(result)


@main.command()
@click.option("--date", "day", callback=_date, help="As-of date of the shares (default: today).")
@click.option("--partner", "partners", multiple=True, help="Only this partner (repeatable).")
def publish(day: date | None, partners: tuple[str, ...]) -> None:
    """Publish partner shares from the warehouse as immutable, signed snapshots."""
    from pingan.pipeline import publish_shares

    shares = publish_shares(load_settings(), day or date.today(), list(partners) or None)
    for share in shares:
        out.print(share)


@main.command()
@click.option("--date", "day", callback=_date, required=True, help="Logical date (YYYY-MM-DD).")
@click.option("--feed", "feeds", multiple=True, help="Only this feed (repeatable).")
def run(day: date, feeds: tuple[str, ...]) -> None:
    """All stages for one date: ingest every feed, build the warehouse, publish shares."""
    from pingan.pipeline import run_day

    result = run_day(load_settings(), day, feeds=list(feeds) or None, progress=_progress)
    _print_outcomes(day, result.feeds)
    if result.failed:
        sys.exit(1)


@main.command()
@click.option("--days", default=7, show_default=True, help="How many simulated days.")
@click.option("--start", callback=_date, default="2025-03-01", show_default=True, help="First day.")
@click.option("--seed", default=42, show_default=True)
@click.option("--scale", default=1.0, show_default=True)
@click.option("--defect-rate", default=0.01, show_default=True)
def demo(days: int, start: date, seed: int, scale: float, defect_rate: float) -> None:
    """Simulate a date range, then run every day of it; end with a summary and the analyst's next command."""
    from pingan.demo import run_demo

    settings = load_settings()
    summary = run_demo(settings, start, start + timedelta(days=days - 1), seed=seed, scale=scale,
                       defect_rate=defect_rate, progress=_progress)
    from pingan.demo import print_summary

    print_summary(out, settings, summary)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON: per feed, its batches and row counts.")
def status(as_json: bool) -> None:
    """What was loaded, when, how many rows, what was quarantined."""
    from pingan.pipeline import lake_store
    from pingan.status import collect_status

    settings = load_settings()
    data = collect_status(settings, lake_store(settings))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    table = Table("feed", "days", "last day", "rows written", "quarantined", "blocked", "failed or late",
                  title=f"lake {data['lake']}")
    for feed, f in data["feeds"].items():
        problems = ", ".join(f"{d} {p['status']}" for d, p in f["problem_days"].items())
        table.add_row(feed, str(f["days_committed"]), f["last_load_date"] or "-",
                      f"{f['rows_written']:,}", f"{f['rows_quarantined']:,}", ", ".join(f["blocked_days"]) or "-",
                      problems or "-")
    out.print(table)
    for feed, f in data["feeds"].items():
        for d, p in f["problem_days"].items():
            out.print(f"{feed} {d}: {p['status']}: {p['error']}", highlight=False, soft_wrap=True)
    out.print(f"warehouse: {data['warehouse']} ({'published' if data['warehouse_exists'] else 'not built yet'})")


@main.command()
def feeds() -> None:
    """List and validate the feed specs under connectors/."""
    from pingan.feed_spec import load_specs

    settings = load_settings()
    table = Table("feed", "jurisdiction", "entity", "transport", "format", "spec")
    for feed, s in sorted(load_specs(settings.connectors_dir).items()):
        table.add_row(feed, s.jurisdiction_code, s.entity, s.transport.kind, s.format.kind,
                      os.path.relpath(s.path))
    out.print(table)


def _print_outcomes(day: date, outcomes) -> None:
    table = Table("feed", "status", "read", "written", "quarantined", "note", title=f"load {day}")
    for o in outcomes:
        r = o.result
        note = o.error or (", ".join(f"{k}={v}" for k, v in (r.quarantine_by_rule or {}).items()) if r else "")
        table.add_row(o.feed, o.status, *(f"{x:,}" for x in (r.rows_read, r.rows_written, r.rows_quarantined))
                      if r else ("-", "-", "-"), note[:120])
    out.print(table)


if __name__ == "__main__":
    main()
