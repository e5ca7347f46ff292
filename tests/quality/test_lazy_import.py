"""Great Expectations costs seconds to import: importing the gate (hence the CLI) must not pull it in."""

from __future__ import annotations

import subprocess
import sys

import pytest
from quality_factories import SUITES_DIR


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout.strip()


def test_importing_the_gate_does_not_import_gx():
    code = (
        "import sys, pingan.quality, pingan.quality.gate, pingan.quality.suites, pingan.quality.identifiers;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'great_expectations'))"
    )
    assert _run(code) == "[]"


@pytest.mark.slow
def test_gx_stays_quiet_under_airflow_logging(tmp_path):
    # Airflow's structlog set-up prints INFO records of every library; GX's must not show, ours must
    code = f"""
import logging, airflow
from pingan.core.canonical import entity_schema
from pingan.quality.gate import validate_batch
logging.getLogger("pingan.test").info("ours")
validate_batch("incident", entity_schema("incident").empty_table(), suites_dir=__import__("pathlib").Path({str(SUITES_DIR)!r}))
print("done")
"""
    # a script, not `python -c`: with pyspark installed (the spark extra), GX imports pyspark, whose
    # Spark Connect check takes a `-c` main module for a doctest run and exits 0 when grpc is missing
    script = tmp_path / "gx_under_airflow.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True
    )
    output = done.stdout + done.stderr
    assert "ours" in output and "done" in output
    assert "great_expectations" not in output
    assert "Calculating Metrics" not in output
