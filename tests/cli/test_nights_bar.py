"""The demo's progress bar: on a terminal a bar of nights with the current step and a line per night;
piped, the lines alone (no control codes in CI or Airflow logs)."""

from __future__ import annotations

import io

from rich.console import Console

from pingan.cli.nights_bar import NightsBar


def test_a_terminal_shows_the_bar_the_step_and_a_line_per_night():
    screen = io.StringIO()
    term = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with NightsBar(3, term) as bar:
        bar.step("ingest jiashan_incidents 2025-03-01")
        bar._progress.refresh()
        bar.night_done("2025-03-01: 9/9 feeds committed")
        bar._progress.refresh()
        shown = screen.getvalue()
    assert "ingest jiashan_incidents 2025-03-01" in shown
    assert "0/3 nights" in shown and "1/3 nights" in shown
    assert "━" in shown  # the bar itself
    assert "2025-03-01: 9/9 feeds committed" in shown


def test_piped_output_gets_the_lines_alone():
    piped = io.StringIO()
    with NightsBar(2, Console(file=piped, force_terminal=False, width=100)) as bar:
        bar.step("build")
        bar.night_done("2025-03-01: 9/9 feeds committed")
    assert piped.getvalue().strip() == "2025-03-01: 9/9 feeds committed"
