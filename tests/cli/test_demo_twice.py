"""The same command twice is safe and honest: a second `pingan demo` on the same home starts over and says
so, reports what the first run did, and any ERROR makes the command exit non-zero (issue 21)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date

import pytest

from pingan.cli.demo import DemoFailed, DemoSummary, print_summary

PINGAN = [sys.executable, "-m", "pingan.cli.app"]


def demo(home) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")} | {
        "PINGAN_HOME": str(home),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [*PINGAN, "demo", "--days", "2", "--scale", "0.05"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def rows_loaded(stdout: str) -> dict[str, str]:
    """feed -> rows loaded, from the summary table."""
    return dict(re.findall(r"│\s*([a-z0-9_]+)\s*│\s*([\d,]+)\s*│", stdout))


@pytest.mark.slow
def test_a_second_demo_on_the_same_home_starts_over_and_reports_the_same(tmp_path):
    first = demo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    second = demo(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "ERROR" not in first.stderr + first.stdout and "ERROR" not in second.stderr + second.stdout
    assert "starting over" not in first.stderr and "starting over" in second.stderr
    assert rows_loaded(first.stdout) and rows_loaded(second.stdout) == rows_loaded(first.stdout)
    assert (tmp_path / "secrets").is_dir()  # keys survive a restart


def test_an_error_during_the_demo_means_a_non_zero_exit(settings, capsys):
    from rich.console import Console

    summary = DemoSummary(date(2025, 3, 1), date(2025, 3, 1), {}, errors=["qingpu_tax_registry: load failed"])
    with pytest.raises(DemoFailed, match="1 ERROR.*qingpu_tax_registry") as failed:
        print_summary(Console(), settings, summary)
    assert failed.value.exit_code == 1
