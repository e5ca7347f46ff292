"""The `pingan` command: every stage of the nightly job, runnable without Airflow.

Heavy libraries (Great Expectations, dbt, Airflow) are imported inside commands, so `pingan --help`
stays fast. Errors print one line and where to look; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import date

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
    """Turns any exception into one clear line (and exit code 1) unless --debug; adds installed extras'
    commands (entry point group `pingan.cli`: the simulator's simulate and demo) when first looked up."""

    def _add_plugins(self) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group="pingan.cli"):
            if ep.name not in self.commands:
                self.add_command(ep.load(), ep.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str):
        if name not in self.commands:
            self._add_plugins()
        return super().get_command(ctx, name)

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
    PINGAN_S3_* puts the lake on MinIO/S3. PINGAN_DEPLOYMENT=prod has no defaults and checks every
    variable at start-up. Typical use: `pingan demo` (simulate a week and run it; needs the sim extra),
    `pingan run --date 2025-01-01`, `pingan status`.
    """
    ctx.obj = {"debug": debug}
    if ctx.invoked_subcommand and not any(a in ("-h", "--help") for a in sys.argv[1:]):
        from pingan.deployment import check_deployment

        check_deployment(load_settings())  # prod: every unset variable in one error, before any work
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)])
    for noisy in ("great_expectations", "urllib3", "botocore", "minio", "dbt", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--date", "day", callback=_date, required=True, help="Logical date to load (YYYY-MM-DD).")
@click.option("--feed", "feeds", multiple=True, help="Only this feed (repeatable). Default: all feeds.")
@click.option("--no-gate", is_flag=True, help="Skip the Great Expectations gate (not for production).")
@click.option("--force", is_flag=True, help="Reload an incremental feed's day even when later days are loaded.")
def ingest(day: date, feeds: tuple[str, ...], no_gate: bool, force: bool) -> None:
    """Load feeds for one logical date into the raw zone (idempotent: a rerun replaces that day)."""
    from pingan.pipeline import ingest_day

    settings = load_settings()
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
    for a in data["alerts"]:
        out.print(f"[red]alert[/] {a['raised_at'][:19]} {a['dag_id']}.{a['task_id']} ({a['run_id']}): {a['error']}",
                  highlight=False, soft_wrap=True)
    out.print(f"warehouse: {data['warehouse']} ({'published' if data['warehouse_exists'] else 'not built yet'})")


@main.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the chain as JSON.")
def lineage(target: str, as_json: bool) -> None:
    """Trace a warehouse table (e.g. fct_incidents) or a share (PARTNER/DATASET) back to its source files.

    Prints share snapshot → table → dbt models → raw batches → source files (with sha256), from the
    share's signed manifest, dbt's manifest of the last build and the raw zone's commit manifests.
    """
    from dataclasses import asdict

    from pingan.lineage import as_text, trace
    from pingan.pipeline import lake_store

    settings = load_settings()
    chain = trace(settings, lake_store(settings), target)
    if as_json:
        click.echo(json.dumps(asdict(chain), ensure_ascii=False, indent=2, default=str))
        return
    for line in as_text(chain):
        out.print(line, highlight=False, soft_wrap=True)


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
