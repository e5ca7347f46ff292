"""The night's stages, one command each: ingest, validate, build, publish, run."""

from __future__ import annotations

import sys
from datetime import date

import click
from rich.table import Table

from pingan.cli.console import date_option, out, progress
from pingan.core.settings import load_settings
from pingan.core.status import BatchStatus


@click.command()
@click.option("--date", "day", callback=date_option, required=True, help="Logical date to load (YYYY-MM-DD).")
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
        settings, day, feeds=list(feeds) or None, gate=not no_gate, progress=progress, force=force
    )
    _print_outcomes(day, outcomes)
    if any(o.status in (BatchStatus.FAILED, BatchStatus.BLOCKED) for o in outcomes):
        sys.exit(1)


@click.command()
@click.option("--feed", required=True, help="Feed id.")
@click.option("--date", "day", callback=date_option, required=True, help="Load date of the stored batch.")
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


@click.command()
@click.option("--full-refresh", is_flag=True, help="Rebuild every model from the whole raw zone.")
@click.option(
    "--date",
    "day",
    callback=date_option,
    help="Logical date feed freshness is judged against (default: the latest committed load date).",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="duckdb: the analyst file. spark: the same models on Spark (the `spark` extra), tables as "
    "Parquet under $PINGAN_HOME/spark-warehouse; a full rebuild from the whole lake unless --spark-incremental.",
)
@click.option(
    "--spark-incremental",
    is_flag=True,
    help="With --engine spark: keep a Derby catalog in $PINGAN_HOME/spark-catalog and read only the "
    "batches not built yet (the first build is a full one).",
)
@click.option(
    "--spark-master",
    metavar="URL",
    help="With --engine spark: the cluster to run on, e.g. spark://host:7077 "
    "(default $PINGAN_SPARK_MASTER, else local[2] in this process).",
)
def build(
    full_refresh: bool, day: date | None, engine: str, spark_master: str | None, spark_incremental: bool
) -> None:
    """Build the governance warehouse with dbt from the committed batches; publish it atomically.

    Incremental by default: only batches committed since the last build are read, and batches a rerun
    replaced are withdrawn, so the result always equals --full-refresh. dbt's own log goes to
    $PINGAN_HOME/dbt/logs/dbt.log (printed at the end); -v shows it on the terminal.
    """
    if engine == "spark":
        from pingan.warehouse.spark import build_lake_on_spark

        result = build_lake_on_spark(
            load_settings(),
            build_date=day,
            master=spark_master,
            progress=progress,
            incremental=spark_incremental and not full_refresh,
        )
        out.print(result)
        return
    from pingan.orchestration.pipeline import build_warehouse

    settings = load_settings()
    result = build_warehouse(settings, full_refresh=full_refresh, build_date=day, progress=progress)
    print_build(result, settings)


@click.command()
@click.option(
    "--date",
    "day",
    callback=date_option,
    help="Logical as-of date of the shares (default: the newest committed load date; never later).",
)
@click.option("--partner", "partners", multiple=True, help="Only this partner (repeatable).")
@click.option(
    "--full",
    is_flag=True,
    help="Overwrite each dataset with a full snapshot instead of merging the night's changed rows "
    "(a changed agreement, grant or key re-snapshots by itself).",
)
def publish(day: date | None, partners: tuple[str, ...], full: bool) -> None:
    """Publish partner shares from the warehouse as signed snapshots: by default a new Delta version with
    only the rows that changed since the last one (merge), `--full` for a whole re-snapshot.

    Refused (exit 1, saying why) on an empty lake, for a date past the newest committed data, or when an
    agreement grants a dataset no feed fills. A pointer advanced wrongly: `pingan partners repoint`."""
    from pingan.core.storage import lake_store
    from pingan.orchestration.pipeline import publish_shares
    from pingan.sharing.publish import newest_committed_date

    settings = load_settings()
    day = day or newest_committed_date(lake_store(settings)) or date.today()  # empty lake: refused below
    shares = publish_shares(settings, day, list(partners) or None, full=full)
    out.print(f"published as of {day}", highlight=False)
    for partner in sorted({s.partner for s in shares}):
        mine = [s for s in shares if s.partner == partner]
        out.print(
            f"{partner}: "
            + ", ".join(f"{s.dataset} {s.snapshot_id} ({s.rows:,} rows{_written(s)})" for s in mine),
            highlight=False,
            soft_wrap=True,
        )


def _written(share) -> str:
    if not share.write_mode:
        return ", already published"
    if share.write_mode == "unchanged":
        return ", no row changed"
    return f", {share.write_mode}: {share.files_added} file(s) added, {share.bytes_added:,} bytes"


@click.command()
@click.option("--date", "day", callback=date_option, required=True, help="Logical date (YYYY-MM-DD).")
@click.option("--feed", "feeds", multiple=True, help="Only this feed (repeatable).")
def run(day: date, feeds: tuple[str, ...]) -> None:
    """All stages for one date: ingest every feed, build the warehouse, publish shares."""
    from pingan.orchestration.pipeline import run_day

    result = run_day(load_settings(), day, feeds=list(feeds) or None, progress=progress)
    _print_outcomes(day, result.feeds)
    if result.failed:
        sys.exit(1)


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


@click.command()
@click.option("--feed", required=True, help="Feed id.")
@click.option("--date", "day", callback=date_option, required=True, help="The day whose delivery is right.")
@click.option(
    "--reason",
    required=True,
    help="Why the day is right although unlike its feed's profile (>= 10 characters).",
)
@click.option(
    "--force", is_flag=True, help="Reload an incremental feed's day even when later days are loaded."
)
def accept(feed: str, day: date, reason: str, force: bool) -> None:
    """Accept an unusual day on purpose: the decision is recorded (who, when, why, what the profile said),
    the day is loaded again with its profile checks only warning, and the profile learns it."""
    import getpass
    from datetime import UTC, datetime

    from pingan import raw_zone
    from pingan.core import audit
    from pingan.core.feed_spec import load_specs
    from pingan.core.storage import lake_store, share_store
    from pingan.orchestration.pipeline import ingest_day
    from pingan.quality.profile import Acceptance, record_acceptance

    settings = load_settings()
    lake = lake_store(settings)
    if feed not in load_specs(settings.connectors_dir):
        raise click.BadParameter(f"unknown feed {feed!r} (see `pingan feeds`)", param_hint="--feed")
    if len(reason.strip()) < 10:
        raise click.BadParameter("give a reason of at least 10 characters", param_hint="--reason")
    attempts = [r for r in raw_zone.attempt_records(lake, feed) if r.load_date == day]
    findings = [attempts[-1].error] if attempts and attempts[-1].error else []
    record_acceptance(
        lake,
        Acceptance(
            feed=feed,
            load_date=day,
            reason=reason.strip(),
            accepted_by=getpass.getuser(),
            accepted_at=datetime.now(UTC).isoformat(),
            findings=findings,
        ),
    )
    who = getpass.getuser()
    audit.append(share_store(settings), "delivery_accepted", feed=feed, load_date=day, reason=reason, by=who)
    outcomes = ingest_day(settings, day, feeds=[feed], progress=progress, force=force)
    _print_outcomes(day, outcomes)
    if any(o.status != BatchStatus.COMMITTED for o in outcomes):
        sys.exit(1)
