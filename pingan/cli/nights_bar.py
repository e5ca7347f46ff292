"""A progress bar over the nights of a long run (the demo): one printed line per night above it, the
night's current step in it. On a terminal only; piped output (CI, Airflow logs) gets the lines alone."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class NightsBar:
    def __init__(self, total: int, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", style="dim"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("nights"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("starting", total=total)

    def __enter__(self) -> NightsBar:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def night_done(self, line: str) -> None:
        """A finished night: its line printed above the bar, the bar one night further."""
        self._progress.console.print(f"  [dim]{line}[/]", highlight=False)
        self._progress.advance(self._task)

    def step(self, message: str) -> None:
        """What the current night is doing (an ingest, the build, a publish), shown in the bar."""
        self._progress.update(self._task, description=message[:70])
