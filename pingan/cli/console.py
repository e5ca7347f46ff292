"""What every command shares: the two consoles (stderr for progress, stdout for results), date options."""

from __future__ import annotations

import os
import sys
from datetime import date

import click
from rich.console import Console

# Piped output (CI logs, Airflow task logs) has no terminal width; rich would assume 80 columns and cut
# the tables. A real terminal keeps its own width.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
console = Console(stderr=True, width=_WIDTH)
out = Console(width=_WIDTH)


def date_option(_ctx, _param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def progress(msg: str) -> None:
    console.print(f"  [dim]{msg}[/]", highlight=False)
