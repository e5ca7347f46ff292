"""`pingan quality`, the stored results (raw.quality_results, Data Docs) and `pingan report` in a real
headless browser (Debian's chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date

import duckdb
import pytest
from click.testing import CliRunner

from pingan.cli.app import main
from pingan.core.storage import Store
from pingan.quality.results_table import quality_status_of_batches, register_quality_results

DAY = date(2025, 3, 1)
HEADER = "接警编号,报警时间,警情类别代码,所属镇街"


def _qingpu(home, when: str = "2025-03-01 08:00:00") -> None:
    path = home / "sim" / "qingpu" / "110" / f"110接处警_{DAY:%Y%m%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] + [f"Q{i:04d},{when},010100,金泽镇" for i in range(50)]
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))


@pytest.fixture
def loaded(home):
    runner = CliRunner()
    _qingpu(home)
    good = runner.invoke(main, ["ingest", "--date", DAY.isoformat(), "--feed", "qingpu_110_incidents"])
    assert good.exit_code == 0, good.output
    _qingpu(home, when="01.03.2025 08h00")  # every timestamp in another format
    bad = runner.invoke(main, ["ingest", "--date", DAY.isoformat(), "--feed", "qingpu_110_incidents"])
    assert bad.exit_code == 1, bad.output
    return home


def test_quality_shows_the_blocked_day_with_its_cause(loaded):
    result = CliRunner().invoke(main, ["quality", "--feed", "qingpu_110_incidents", "--since", "2025-03-01"])
    assert result.exit_code == 1, result.output
    assert "blocked" in result.output and "unparseable_timestamp" in result.output
    assert re.search(
        r"qingpu_110_incidents 2025-03-01 blocked: rows_accepted: .*100% of 50 rows", result.output
    )
    assert re.search(r"│\s+50\s+│\s+50\s+│\s+50\s+│", result.output), (
        "read 50, committed 50 (the good load), 50 rejected"
    )


def test_results_land_in_a_table_and_share_manifests_can_quote_them(loaded, settings):
    lake = Store(settings.lake_url)
    con = duckdb.connect()
    assert register_quality_results(con, lake) > 0
    rows = con.execute(
        "select status, is_current, stage, rule, outcome, rows_failed from raw.quality_results "
        "where stage = 'batch'"
    ).fetchall()
    assert rows == [("blocked", False, "batch", "rows_accepted", "rejected", 50)]
    current = con.execute("select distinct batch_id from raw.quality_results where is_current").fetchall()
    (batch_id,) = current[0]
    status = quality_status_of_batches(lake, [batch_id, "nope"])
    assert status[batch_id]["status"] == "committed" and status[batch_id]["rows_written"] == 50
    assert status["nope"] == {"status": "unknown"}


def test_report_draws_its_charts_in_a_real_browser(loaded, settings, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (make test installs it with apt-get when apt is available)")
    page = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--output", str(page)])
    assert result.exit_code == 0, result.output
    lake = Store(settings.lake_url)
    assert lake.exists("_quality/data_docs/index.html"), "Data Docs built under the lake"
    assert any("/validations/" in k for k in lake.list("_quality/data_docs/"))
    text = page.read_text("utf-8")
    assert "_quality/data_docs/index.html" in text and "qingpu_110_incidents" in text

    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--user-data-dir=" + str(tmp_path / "profile"),
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-charts-drawn="1"' in dom.stdout, dom.stdout[:500]
    bars = re.search(r'data-bars="(\d+)"', dom.stdout)
    ink = re.search(r'data-ink="(\d+)"', dom.stdout)
    assert bars and int(bars.group(1)) == 1  # one day
    assert ink and int(ink.group(1)) > 500, "the chart put pixels on its canvas"
