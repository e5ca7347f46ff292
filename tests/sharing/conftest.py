"""Fixtures for partner shares: a published warehouse with PII, a local lake, the agreements copied."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from share_fixtures import incident_rows, write_warehouse

from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.sharing.publish import share_store


@pytest.fixture
def agreements_dir(tmp_path) -> Path:
    target = tmp_path / "agreements"
    shutil.copytree(PROJECT_ROOT / "agreements", target)
    return target


@pytest.fixture
def share_env(home, monkeypatch):
    for var in (
        "PINGAN_SHARE_SIGNING_KEY",
        "PINGAN_SHARE_KEY_WUJIANG",
        "PINGAN_SHARE_KEY_JIASHAN",
        "PINGAN_SHARE_KEY_PINGHU",
        "PINGAN_SHARE_KEY_JINSHAN",
    ):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    write_warehouse(settings.warehouse_path, incident_rows())
    lake = Store(settings.lake_url, settings.s3)
    lake.ensure()
    return settings, lake, share_store(settings)
