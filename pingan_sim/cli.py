"""`pingan simulate` and `pingan demo`: registered into the `pingan` command (entry point group `pingan.cli`)
only where the simulator is installed, so a production install has neither."""

from __future__ import annotations

from datetime import date, timedelta

import click
from rich.table import Table

from pingan.cli.console import date_option as _date
from pingan.cli.console import out
from pingan.cli.console import progress as _progress
from pingan.core.settings import Settings, load_settings
from pingan.core.storage import landing_store


def write_sources(
    settings: Settings,
    start: date,
    end: date,
    *,
    seed: int,
    scale: float,
    defect_rate: float,
    progress=_progress,
) -> dict[str, int]:
    """Simulate [start, end] into the local deployment's landing root and the simulator's own files."""
    from pingan_sim import simulate as run_simulation

    if settings.deployment != "local":
        raise click.ClickException(
            "the simulator writes only into the local deployment (PINGAN_DEPLOYMENT=local)"
        )
    landing = landing_store(settings)
    landing.ensure()
    return run_simulation(
        settings.home,
        landing,
        start,
        end,
        seed=seed,
        scale=scale,
        defect_rate=defect_rate,
        progress=progress,
    )


@click.command()
@click.option("--start", callback=_date, required=True, help="First simulated day (YYYY-MM-DD).")
@click.option("--end", callback=_date, help="Last simulated day (default: --start).")
@click.option("--seed", default=42, show_default=True, help="Same seed and arguments give identical files.")
@click.option("--scale", default=1.0, show_default=True, help="1.0 = a district's real daily volumes.")
@click.option(
    "--defect-rate", default=0.01, show_default=True, help="Share of records with an injected defect."
)
def simulate(start: date, end: date | None, seed: int, scale: float, defect_rate: float) -> None:
    """Write the simulated source systems under $PINGAN_HOME/sim (local deployment; needs the sim extra).

    Every feed in its native format; every injected defect is listed in sim/defects.jsonl.
    """
    counts = write_sources(
        load_settings(), start, end or start, seed=seed, scale=scale, defect_rate=defect_rate
    )
    table = Table("feed", "rows", title=f"simulated {start} .. {end or start} (seed {seed}, scale {scale})")
    for feed, n in sorted(counts.items()):
        table.add_row(feed, f"{n:,}")
    out.print(table)


@click.command()
@click.option("--days", default=7, show_default=True, help="How many simulated days.")
@click.option("--start", callback=_date, default="2025-03-01", show_default=True, help="First day.")
@click.option("--seed", default=42, show_default=True, help="Same seed and arguments give identical files.")
@click.option("--scale", default=1.0, show_default=True, help="1.0 = a district's real daily volumes.")
@click.option(
    "--defect-rate", default=0.01, show_default=True, help="Share of records with an injected defect."
)
@click.pass_context
def demo(ctx: click.Context, days: int, start: date, seed: int, scale: float, defect_rate: float) -> None:
    """Simulate a date range, then run every day of it; end with a summary and the analyst's next command.

    One line per night (loads, build, shares); `pingan -v demo` shows every step and dbt's output.
    """
    from pingan.cli.console import console
    from pingan.cli.demo import print_summary, run_demo
    from pingan.cli.nights_bar import NightsBar

    settings = load_settings()
    end = start + timedelta(days=days - 1)
    verbose = bool((ctx.obj or {}).get("verbose"))
    _progress(f"simulating {start} .. {end} (seed {seed}, scale {scale}) into {settings.sim_dir}")
    simulated = write_sources(
        settings,
        start,
        end,
        seed=seed,
        scale=scale,
        defect_rate=defect_rate,
        progress=_progress if verbose else None,
    )
    _progress(f"simulated {sum(simulated.values()):,} source records")
    with NightsBar(days, console) as bar:
        summary = run_demo(
            settings,
            start,
            end,
            simulated,
            progress=bar.night_done,
            detail=_progress if verbose else bar.step,
        )
    print_summary(out, settings, summary)
