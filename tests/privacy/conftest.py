"""One small demo (2 days, scale 0.1) shared by the privacy tests: the night as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("pii_demo")
    env = {**os.environ, "PINGAN_HOME": str(home)}
    run = subprocess.run(
        [str(BIN / "pingan"), "demo", "--days", "2", "--scale", "0.1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return home
