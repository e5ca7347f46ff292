"""Shared fixtures: an isolated PINGAN_HOME per test, and a real S3 server (SeaweedFS) per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3_server import S3Server, start_s3_server

from pingan.core.settings import load_settings

# What a test starts, marked so `make test-fast` can leave it out: a test that reaches the S3 server
# through any fixture is an `s3` test, and everything under these folders runs Airflow or dbt.
STARTS_BY_FOLDER = {"dags": "airflow", "warehouse": "dbt", "e2e": "dbt", "cli": "dbt", "privacy": "dbt"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        # through the session fixture, or a module starting its own SeaweedFS (tests/sharing/test_share_access.py)
        if "s3_server" in getattr(item, "fixturenames", ()) or hasattr(item.module, "start_s3_server"):
            item.add_marker(pytest.mark.s3)
        folder = Path(str(item.fspath)).parent.name
        if folder in STARTS_BY_FOLDER and item.module.__name__ != "test_dbt_project":
            item.add_marker(getattr(pytest.mark, STARTS_BY_FOLDER[folder]))


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
