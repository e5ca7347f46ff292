"""Shared fixtures: an isolated PINGAN_HOME per test, and a real S3 server (SeaweedFS) per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from s3_server import S3Server, start_s3_server  # noqa: E402

from pingan.core.settings import load_settings  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty PINGAN_HOME with the embedded default (lake and landing on local disk)."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("PINGAN_HOME", str(h))
    for var in (
        "PINGAN_LAKE_URL",
        "PINGAN_LANDING_URL",
        "PINGAN_WAREHOUSE",
        "PINGAN_S3_ENDPOINT",
        "PINGAN_QINGPU_FIRE_URL",
        "PINGAN_PINGHU_JINSHAN_URL",
        "PINGAN_QINGPU_FIRE_TOKEN",
        "PINGAN_QINGPU_TAX_DB_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    return h


@pytest.fixture
def settings(home):
    return load_settings()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()
