"""One small simulated run shared by the read-only tests of this folder (about a second to make)."""

from __future__ import annotations

import pytest
from sim_runs import SimRun, run_simulation


@pytest.fixture(scope="session")
def sim(tmp_path_factory) -> SimRun:
    return run_simulation(tmp_path_factory.mktemp("sim") / "home")
