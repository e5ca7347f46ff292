"""The `pingan` command: help that explains, one-line errors, status as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pingan.cli import main

COMMANDS = {"simulate", "ingest", "validate", "build", "publish", "run", "demo", "status"}


def test_help_lists_every_stage_without_importing_heavy_libraries():
    code = ("import sys; from click.testing import CliRunner; from pingan.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); print(r.output); "
            "print('HEAVY', sorted(m for m in ('great_expectations', 'dbt', 'airflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert {line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()} >= COMMANDS
    assert "HEAVY []" in out


def test_errors_are_one_line_with_where_to_look(home):
    result = CliRunner().invoke(main, ["ingest", "--date", "2025-03-01", "--feed", "no_such_feed"])
    assert result.exit_code == 1
    assert "unknown feed(s) ['no_such_feed']" in result.output
    assert "Traceback" not in result.output and "--debug" in result.output


def test_bad_date_is_a_usage_error(home):
    result = CliRunner().invoke(main, ["run", "--date", "2025-02-30"])
    assert result.exit_code == 2 and "is not a date" in result.output


def test_status_json_reports_batches_per_feed(home: Path):
    src = home / "sim" / "jiashan" / "incidents" / "jiashan_jq_20250301.csv"
    src.parent.mkdir(parents=True)
    src.write_bytes("\ufeff警情编号,接警时间,警情类型代码,镇街\nJ1,2025/03/01 08:00,JS-ZA-01,西塘镇\nJ2,bad,JS-ZA-01,西塘镇\n"
                    .encode("utf-8"))
    load = CliRunner().invoke(main, ["ingest", "--date", "2025-03-01", "--feed", "jiashan_incidents", "--no-gate"])
    assert load.exit_code == 0, load.output
    result = CliRunner().invoke(main, ["status", "--json"])
    data = json.loads(result.output)
    feed = data["feeds"]["jiashan_incidents"]
    (batch,) = feed["batches"]
    assert (batch["rows_read"], batch["rows_written"], batch["rows_quarantined"]) == (2, 1, 1)
    assert batch["status"] == "committed" and batch["is_current"]
    assert batch["quarantine_by_rule"] == {"unparseable_timestamp": 1}
    assert data["feeds"]["wujiang_incidents"]["batches"] == []
