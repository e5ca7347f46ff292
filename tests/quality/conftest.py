"""Fixtures of the quality tests; generators live in quality_factories.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from quality_factories import SUITES_DIR


@pytest.fixture(scope="session")
def suites_dir() -> Path:
    return SUITES_DIR
