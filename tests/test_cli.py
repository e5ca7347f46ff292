"""The `pingan` command: help that explains, one-line errors, status as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pingan.cli.app import main

COMMANDS = {"simulate", "ingest", "validate", "build", "publish", "run", "demo", "status"}


def test_help_lists_every_stage_without_importing_heavy_libraries():
    code = (
        "import sys; from click.testing import CliRunner; from pingan.cli.app import main; "
        "r = CliRunner().invoke(main, ['--help']); print(r.output); "
        "print('HEAVY', sorted(m for m in ('great_expectations', 'dbt', 'airflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert {
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()
    } >= COMMANDS
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
    src.write_bytes(
        "\ufeff警情编号,接警时间,警情类型代码,镇街\nJ1,2025/03/01 08:00,JS-ZA-01,西塘镇\nJ2,bad,JS-ZA-01,西塘镇\n".encode(
            "utf-8"
        )
    )
    load = CliRunner().invoke(
        main, ["ingest", "--date", "2025-03-01", "--feed", "jiashan_incidents", "--no-gate"]
    )
    assert load.exit_code == 0, load.output
    result = CliRunner().invoke(main, ["status", "--json"])
    data = json.loads(result.output)
    feed = data["feeds"]["jiashan_incidents"]
    (batch,) = feed["batches"]
    assert (batch["rows_read"], batch["rows_written"], batch["rows_quarantined"]) == (2, 1, 1)
    assert batch["status"] == "committed" and batch["is_current"]
    assert batch["quarantine_by_rule"] == {"unparseable_timestamp": 1}
    assert data["feeds"]["wujiang_incidents"]["batches"] == []


def test_status_shows_late_and_failed_days_with_their_errors(home: Path):
    runner = CliRunner()
    late = runner.invoke(main, ["ingest", "--date", "2025-03-01", "--feed", "jiashan_incidents", "--no-gate"])
    assert late.exit_code == 0, late.output  # late is not a failure: the partner has not delivered yet
    src = home / "sim" / "qingpu" / "110" / "110接处警_20250301.csv"
    src.parent.mkdir(parents=True)
    src.write_bytes("接警编号,所属镇街\nQ1,金泽镇\n".encode("gb18030"))  # mandatory columns missing
    failed = runner.invoke(
        main, ["ingest", "--date", "2025-03-01", "--feed", "qingpu_110_incidents", "--no-gate"]
    )
    assert failed.exit_code == 1

    data = json.loads(runner.invoke(main, ["status", "--json"]).output)
    late_day = data["feeds"]["jiashan_incidents"]["problem_days"]["2025-03-01"]
    assert late_day["status"] == "late" and "jiashan_jq_20250301.csv" in late_day["error"]
    failed_day = data["feeds"]["qingpu_110_incidents"]["problem_days"]["2025-03-01"]
    assert failed_day["status"] == "failed" and "报警时间" in failed_day["error"]
    assert str(src) in failed_day["error"]

    # the partner delivers: the day loads and is no longer a problem
    src2 = home / "sim" / "jiashan" / "incidents" / "jiashan_jq_20250301.csv"
    src2.parent.mkdir(parents=True)
    src2.write_bytes(
        "\ufeff警情编号,接警时间,警情类型代码,镇街\nJ1,2025/03/01 08:00,JS-ZA-01,西塘镇\n".encode()
    )
    assert (
        runner.invoke(
            main, ["ingest", "--date", "2025-03-01", "--feed", "jiashan_incidents", "--no-gate"]
        ).exit_code
        == 0
    )
    data = json.loads(runner.invoke(main, ["status", "--json"]).output)
    assert data["feeds"]["jiashan_incidents"]["problem_days"] == {}
    assert data["feeds"]["jiashan_incidents"]["days_committed"] == 1
