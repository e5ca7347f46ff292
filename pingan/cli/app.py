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
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pingan.core.settings import load_settings

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
@click.option("-v", "--verbose", is_flag=True, help="Show every step (per-feed progress, dbt's own output).")
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Pingan: federate police, tax, fire, grid and partner feeds of the Yangtze River Delta.

    Storage comes from the environment: PINGAN_HOME (default ./var) holds the embedded default, a lake in
    var/lake and the analyst warehouse var/warehouse.duckdb; PINGAN_LAKE_URL=s3://bucket/prefix with
    PINGAN_S3_* puts the lake on MinIO/S3. PINGAN_DEPLOYMENT=prod has no defaults and checks every
    variable at start-up. Typical use: `pingan demo` (simulate a week and run it; needs the sim extra),
    `pingan run --date 2025-01-01`, `pingan status`.
    """
    ctx.obj = {"debug": debug, "verbose": verbose or debug}
    if ctx.invoked_subcommand and not any(a in ("-h", "--help") for a in sys.argv[1:]):
        from pingan.core.deployment import check_deployment

        check_deployment(load_settings())  # prod: every unset variable in one error, before any work
    # without --verbose only warnings and errors are logged; commands print their own short progress
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )
    for noisy in ("great_expectations", "urllib3", "botocore", "minio", "dbt", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--date", "day", callback=_date, required=True, help="Logical date to load (YYYY-MM-DD).")
@click.option("--feed", "feeds", multiple=True, help="Only this feed (repeatable). Default: all feeds.")
@click.option("--no-gate", is_flag=True, help="Skip the Great Expectations gate (not for production).")
@click.option(
    "--force", is_flag=True, help="Reload an incremental feed's day even when later days are loaded."
)
def ingest(day: date, feeds: tuple[str, ...], no_gate: bool, force: bool) -> None:
    """Load feeds for one logical date into the raw zone (idempotent: a rerun replaces that day)."""
    from pingan.orchestration.pipeline import ingest_day

    settings = load_settings()
    outcomes = ingest_day(
        settings, day, feeds=list(feeds) or None, gate=not no_gate, progress=_progress, force=force
    )
    _print_outcomes(day, outcomes)
    if any(o.status in ("failed", "blocked") for o in outcomes):
        sys.exit(1)


@main.command()
@click.option("--feed", required=True, help="Feed id.")
@click.option("--date", "day", callback=_date, required=True, help="Load date of the stored batch.")
def validate(feed: str, day: date) -> None:
    """Re-run the quality gate on the committed batch of a feed and day; print the expectations' results."""
    from pingan import raw_zone
    from pingan.core.feed_spec import load_specs
    from pingan.core.storage import lake_store
    from pingan.orchestration.pipeline import quality_gate

    settings = load_settings()
    spec = load_specs(settings.connectors_dir)[feed]
    lake = lake_store(settings)
    manifest = raw_zone.committed_manifest_record(lake, feed, day)
    if manifest is None:
        raise click.ClickException(f"no committed batch for {feed} on {day} (see `pingan status`)")
    table = lake.read_parquet(manifest.files.raw)
    verdict = quality_gate(settings)(spec, table)
    out.print_json(verdict.to_json())
    if not verdict.success:
        sys.exit(1)


@main.command()
@click.option("--full-refresh", is_flag=True, help="Rebuild every model from the whole raw zone.")
@click.option(
    "--date",
    "day",
    callback=_date,
    help="Logical date feed freshness is judged against (default: the latest committed load date).",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="duckdb: the analyst file. spark: the same models on a local Spark session (the `spark` "
    "extra), always from the whole lake, tables as Parquet under $PINGAN_HOME/spark-warehouse.",
)
def build(full_refresh: bool, day: date | None, engine: str) -> None:
    """Build the governance warehouse with dbt from the committed batches; publish it atomically.

    Incremental by default: only batches committed since the last build are read, and batches a rerun
    replaced are withdrawn, so the result always equals --full-refresh. dbt's own log goes to
    $PINGAN_HOME/dbt/logs/dbt.log (printed at the end); -v shows it on the terminal.
    """
    if engine == "spark":
        from pingan.warehouse.spark import build_lake_on_spark

        out.print(build_lake_on_spark(load_settings(), build_date=day, progress=_progress))
        return
    from pingan.orchestration.pipeline import build_warehouse

    settings = load_settings()
    result = build_warehouse(settings, full_refresh=full_refresh, build_date=day, progress=_progress)
    print_build(result, settings)


@main.command()
@click.option("--date", "day", callback=_date, help="As-of date of the shares (default: today).")
@click.option("--partner", "partners", multiple=True, help="Only this partner (repeatable).")
def publish(day: date | None, partners: tuple[str, ...]) -> None:
    """Publish partner shares from the warehouse as immutable, signed snapshots."""
    from pingan.orchestration.pipeline import publish_shares

    shares = publish_shares(load_settings(), day or date.today(), list(partners) or None)
    for partner in sorted({s.partner for s in shares}):
        mine = [s for s in shares if s.partner == partner]
        out.print(
            f"{partner}: " + ", ".join(f"{s.dataset} {s.snapshot_id} ({s.rows:,} rows)" for s in mine),
            highlight=False,
            soft_wrap=True,
        )


@main.command()
@click.option("--date", "day", callback=_date, required=True, help="Logical date (YYYY-MM-DD).")
@click.option("--feed", "feeds", multiple=True, help="Only this feed (repeatable).")
def run(day: date, feeds: tuple[str, ...]) -> None:
    """All stages for one date: ingest every feed, build the warehouse, publish shares."""
    from pingan.orchestration.pipeline import run_day

    result = run_day(load_settings(), day, feeds=list(feeds) or None, progress=_progress)
    _print_outcomes(day, result.feeds)
    if result.failed:
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON: per feed, its batches and row counts.")
def status(as_json: bool) -> None:
    """What was loaded, when, how many rows, what was quarantined."""
    from pingan.core.storage import lake_store
    from pingan.ops.status import collect_status

    settings = load_settings()
    data = collect_status(settings, lake_store(settings))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    table = Table(
        "feed",
        "days",
        "last day",
        "rows written",
        "quarantined",
        "blocked",
        "failed or late",
        "freshness",
        title=f"lake {data['lake']}",
    )
    for feed, f in data["feeds"].items():
        problems = ", ".join(f"{d} {p['status']}" for d, p in f["problem_days"].items())
        table.add_row(
            feed,
            str(f["days_committed"]),
            f["last_load_date"] or "-",
            f"{f['rows_written']:,}",
            f"{f['rows_quarantined']:,}",
            ", ".join(f["blocked_days"]) or "-",
            problems or "-",
            _freshness(f.get("freshness")),
        )
    out.print(table)
    for feed, f in data["feeds"].items():
        for d, p in f["problem_days"].items():
            out.print(f"{feed} {d}: {p['status']}: {p['error']}", highlight=False, soft_wrap=True)
    for a in data["alerts"]:
        out.print(
            f"[red]alert[/] {a['raised_at'][:19]} {a['dag_id']}.{a['task_id']} ({a['run_id']}): {a['error']}",
            highlight=False,
            soft_wrap=True,
        )
    out.print(
        f"warehouse: {data['warehouse']} ({'published' if data['warehouse_exists'] else 'not built yet'})"
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


@main.command()
@click.option("--feed", help="Only this feed.")
@click.option("--since", callback=_date, help="Only load dates on or after this day (YYYY-MM-DD).")
def quality(feed: str | None, since: date | None) -> None:
    """Quality per feed and day: rows read, committed, quarantined by rule, warnings, blocked with cause.

    `committed` is the rows of the day's committed batch: a blocked delivery leaves the previous one.
    Exit code 1 when a shown day's latest load was blocked, failed or interrupted.
    """
    from pingan.core.storage import lake_store
    from pingan.quality.overview import day_quality, top_rules

    days = day_quality(lake_store(load_settings()), feed, since)
    table = Table("feed", "day", "status", "read", "committed", "quarantined", "top rules", "warned")
    for d in days:
        style = "red" if d.status in ("blocked", "failed", "interrupted") else None
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
    if any(d.status in ("blocked", "failed", "interrupted") for d in days):
        sys.exit(1)


@main.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write the page (default: $PINGAN_HOME/report/index.html).",
)
@click.option("--no-data-docs", is_flag=True, help="Do not (re)build the Great Expectations Data Docs first.")
def report(output: str | None, no_data_docs: bool) -> None:
    """Write one static HTML page on the lake's quality: per feed, freshness, rows and quarantine per day
    as charts, top rules, blocked days, and links to the Data Docs and dbt docs. Opens in any browser."""
    from pathlib import Path

    from pingan.core.storage import lake_store
    from pingan.quality.report import write_report

    settings = load_settings()
    path = write_report(
        settings, lake_store(settings), Path(output) if output else None, build_docs=not no_data_docs
    )
    out.print(f"report: {path}", highlight=False)


@main.command()
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


@main.command()
def feeds() -> None:
    """List and validate the feed specs under connectors/."""
    from pingan.core.feed_spec import load_specs

    settings = load_settings()
    table = Table("feed", "jurisdiction", "entity", "transport", "format", "spec")
    for feed, s in sorted(load_specs(settings.connectors_dir).items()):
        table.add_row(
            feed, s.jurisdiction_code, s.entity, s.transport.kind, s.format.kind, os.path.relpath(s.path)
        )
    out.print(table)


@main.group()
def partners() -> None:
    """Hub side: turn the sharing agreements into each partner's access."""


@partners.command("provision")
@click.option(
    "--backend",
    type=click.Choice(["minio", "seaweedfs", "none"]),
    help="minio: users and IAM policies through the MinIO admin API (production); seaweedfs: rewrite "
    "the identities of SeaweedFS's s3.json (tests); none: only write the partners' profiles. "
    "Default: minio for an s3:// share store, none for a local one.",
)
@click.option(
    "--s3-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The s3.json SeaweedFS starts with (seaweedfs back end).",
)
@click.option(
    "--share-server-url",
    help="Endpoint written into the Delta Sharing profiles "
    "(default $PINGAN_SHARE_SERVER_URL or http://127.0.0.1:8090/delta-sharing).",
)
def partners_provision(backend: str | None, s3_config, share_server_url: str | None) -> None:
    """Grant each partner in force read/list on share/<partner>/ of the share store, remove ended ones.

    Writes each partner's pull profile and Delta Sharing profile under $PINGAN_HOME/partners/<partner>/
    (mode 0600), to hand over out of band. Every grant and removal goes to the audit log.
    """
    from pingan.sharing.provision import provision
    from pingan.sharing.publish import share_store

    settings = load_settings()
    shares = share_store(settings)
    backend = backend or ("minio" if shares.scheme == "s3" else "none")
    result = provision(
        settings, shares, backend=backend, s3_config=s3_config, share_server_url=share_server_url
    )
    for partner, path in sorted(result.profiles.items()):
        state = "granted" if partner in result.granted else "unchanged"
        out.print(f"{partner}: access {state}; profiles in {path.parent}", highlight=False)
    for partner in result.removed:
        out.print(f"{partner}: access removed (agreement ended)", highlight=False)


@partners.command("audit")
@click.option("--last", default=10, show_default=True, help="How many of the latest entries to print.")
def partners_audit(last: int) -> None:
    """Verify the sharing audit log's hash chain (exit 1 naming the first broken entry); print the last entries.

    The same log is queryable in the warehouse as audit.share_audit_log.
    """
    from pingan.core import audit
    from pingan.sharing.publish import share_store

    shares = share_store(load_settings())
    count = audit.verify_chain(shares)
    for entry in audit.entries(shares)[-last:] if last else []:
        where = "/".join(x for x in (entry["partner"], entry["dataset"]) if x)
        out.print(f"{entry['seq']:>6} {entry['at'][:19]} {entry['event']:<18} {where}", highlight=False)
    out.print(f"audit log: {count} entries, hash chain intact ({shares.uri(audit.PREFIX)})", highlight=False)


@main.group()
def partner() -> None:
    """Partner side: pull the shares an agreement grants and verify them."""


@partner.command("pull")
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The partner profile (share store, credentials, trusted hub key ids) the hub handed over.",
)
@click.option(
    "--dest",
    default="pingan-shares",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Local folder for the snapshots and <partner>.duckdb.",
)
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
def partner_pull(profile_path: str, dest: str, datasets: tuple[str, ...]) -> None:
    """Download the latest snapshots, verify signature, partner, dataset, rollback and hashes; add DuckDB views.

    Anything that does not verify is refused with one line and not used.
    """
    from pingan.sharing.partner import load_profile, pull

    profile = load_profile(Path(profile_path))
    pulled = pull(profile, Path(dest), list(datasets) or None)
    for p in pulled:
        out.print(
            f"{p.dataset}: {p.snapshot_id} as of {p.as_of}, {p.rows:,} rows, verified"
            f"{'' if p.new else ' (already here)'}",
            highlight=False,
        )
    out.print(
        f"query: .venv/bin/duckdb -readonly {Path(dest) / (profile.partner + '.duckdb')}", highlight=False
    )


@partner.command("verify")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The partner profile: which partner this copy belongs to and the trusted hub keys.",
)
def partner_verify(path: str, profile_path: str) -> None:
    """Check a local copy (a snapshot folder or a pull destination): signature, partner, dataset, hashes."""
    from pingan.sharing.partner import load_profile, verify_local

    for m in verify_local(Path(path), load_profile(Path(profile_path))):
        out.print(
            f"{m['dataset']}: {m['snapshot_id']} as of {m['as_of']}, {m['rows']:,} rows, "
            f"signed by {m['signing_key_id']}: ok",
            highlight=False,
        )


@main.command("share-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, help="Port to listen on.")
def share_server(host: str, port: int) -> None:
    """Serve the partner shares over the Delta Sharing protocol (for pandas, Spark, Power BI clients).

    One bearer token per partner, derived from its agreement (see `pingan partners provision` for the
    profile files); ended agreements get 403; file URLs are pre-signed by the object store (or signed by
    this server for a local share store); every query goes to the audit log.
    """
    import uvicorn

    from pingan.sharing.server import create_app

    uvicorn.run(create_app(load_settings()), host=host, port=port, log_level="warning")


def print_build(result, settings) -> None:
    out.print(
        f"warehouse published: {result.warehouse_path} ({len(result.models_built)} models, "
        f"{result.elapsed_seconds:.1f} s)",
        highlight=False,
    )
    out.print("  " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.mart_rows.items())), highlight=False)
    if result.stale_feeds:
        out.print(f"  [yellow]stale feeds (marts flag their rows):[/] {', '.join(result.stale_feeds)}")
    for warning in result.warnings:
        out.print(f"  [yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    out.print(f"  dbt log: {settings.home / 'dbt' / 'logs' / 'dbt.log'}", highlight=False)


def _print_outcomes(day: date, outcomes) -> None:
    table = Table("feed", "status", "read", "written", "quarantined", "note", title=f"load {day}")
    for o in outcomes:
        r = o.result
        note = o.error or (
            ", ".join(f"{k}={v}" for k, v in (r.quarantine_by_rule or {}).items()) if r else ""
        )
        table.add_row(
            o.feed,
            o.status,
            *(f"{x:,}" for x in (r.rows_read, r.rows_written, r.rows_quarantined)) if r else ("-", "-", "-"),
            note[:120],
        )
    out.print(table)


if __name__ == "__main__":
    main()
