"""The `pingan` command: every stage of the nightly job, runnable without Airflow.

Heavy libraries (Great Expectations, dbt, Airflow) are imported inside commands, so `pingan --help`
stays fast. Errors print one line and where to look; `--debug` shows the traceback.
"""

from __future__ import annotations

import logging
import sys

import click
from rich.logging import RichHandler

from pingan.cli import night, partners, privacy, show
from pingan.cli.console import console
from pingan.core.settings import load_settings


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


for command in (
    night.ingest,
    night.accept,
    night.validate,
    night.build,
    night.publish,
    night.run,
    show.status,
    show.quality,
    show.report,
    show.lineage,
    show.feeds,
    partners.partners,
    partners.partner,
    partners.share_server,
    privacy.restricted,
    privacy.retention,
    privacy.subject,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
