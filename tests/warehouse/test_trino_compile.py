"""The same dbt models for Trino: `dbt compile --target trino` renders every model with Trino's macros.

No Trino server can run on these machines (none on PyPI, no Docker, current Trino needs a newer Java than
17), so the integration run is skipped with that reason. dbt compile still asks the catalog which relations
exist (is_incremental() does); a loopback endpoint speaking Trino's client protocol answers every question
with zero rows, as a fresh catalog would, and records the statements so the test proves nothing but
catalog lookups was sent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pingan.core.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent


class EmptyCatalog(BaseHTTPRequestHandler):
    """POST /v1/statement -> a finished query with no rows (Trino client protocol v1)."""

    statements: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.statements.append(body)
        reply = json.dumps({
            "id": f"q{len(self.statements)}", "infoUri": "http://127.0.0.1/ui", "stats": {"state": "FINISHED"},
            "columns": [], "data": [],
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def empty_catalog():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmptyCatalog)
    EmptyCatalog.statements = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], EmptyCatalog.statements
    server.shutdown()


def test_every_model_compiles_for_trino(tmp_path, empty_catalog):
    port, statements = empty_catalog
    project = tmp_path / "dbt"
    shutil.copytree(PROJECT_ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs"))
    target = tmp_path / "target"
    env = {
        "PATH": str(BIN),
        "HOME": str(tmp_path),
        "PINGAN_TRINO_PORT": str(port),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    run = subprocess.run(
        [str(BIN / "dbt"), "compile", "--target", "trino", "--project-dir", str(project), "--profiles-dir",
         str(project), "--target-path", str(target), "--log-path", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    compiled = {p.stem: p.read_text() for p in (target / "compiled" / "pingan" / "models").rglob("*.sql")}
    models = {p.stem for p in (project / "models").rglob("*.sql")}
    assert models <= set(compiled), f"not compiled: {sorted(models - set(compiled))}"
    # the adapter's and our dispatched macros chose Trino's spelling, not DuckDB's
    assert "to_milliseconds(" in compiled["fct_incidents"] and "epoch(" not in compiled["fct_incidents"]
    assert "approx_percentile(" in compiled["mart_response_times"]
    assert "quantile_cont(" not in compiled["mart_response_times"]
    queries = [re.sub(r"^\s*/\*.*?\*/", "", s, flags=re.S).lstrip().lower() for s in statements]
    assert queries and all(q.startswith(("select", "show", "with")) for q in queries), queries


@pytest.mark.skip(
    reason="no Trino server can run here: none on PyPI, no Docker engine, and current Trino needs a newer Java "
    "than the machines' 17; run `dbt build --target trino` against a Trino with the lake's Iceberg catalog"
)
def test_trino_builds_the_warehouse():
    """Placeholder for the integration run against a real Trino (README: Trino)."""
