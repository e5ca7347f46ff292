"""One explicit deployment: local fills the gaps (with the simulator's sources), prod lists every gap and
never starts a simulator; nothing under pingan/ imports the simulator."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import date

import pytest

from pingan.core.deployment import DeploymentError, check_deployment, feed_sources, required_variables
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.orchestration.pipeline import ingest_day

PROD_STORES = {
    "PINGAN_DEPLOYMENT": "prod",
    "PINGAN_LAKE_URL": "s3://lake/pingan",
    "PINGAN_LANDING_URL": "s3://landing",
    "PINGAN_SHARE_URL": "s3://share",
    "PINGAN_WAREHOUSE": "/data/warehouse.duckdb",
}


def test_local_is_the_default_and_keeps_everything_under_home(home):
    s = load_settings()
    assert s.deployment == "local" and s.generate_keys
    assert s.lake_url == f"file://{home / 'lake'}"
    assert s.landing_url == f"file://{home / 'sim'}"
    assert s.share_url == f"file://{home / 'shares'}" and s.dbt_target == "local"
    check_deployment(s)  # local never fails the start-up check


def test_prod_fails_listing_every_unset_variable(home):
    s = load_settings({"PINGAN_DEPLOYMENT": "prod", "PINGAN_HOME": str(home)})
    assert not s.generate_keys and s.lake_url == "" and s.landing_url == ""
    with pytest.raises(DeploymentError) as err:
        check_deployment(s, env={})
    message = str(err.value)
    for name in (
        "PINGAN_LAKE_URL",
        "PINGAN_LANDING_URL",
        "PINGAN_SHARE_URL",
        "PINGAN_S3_SECRET_KEY",
        "PINGAN_SHARE_SIGNING_KEY",
        "PINGAN_HUB_KEY",
        "PINGAN_RESTRICTED_KEY",
        "PINGAN_LAKE_KEY",
        "PINGAN_SHARE_KEY_WUJIANG",
        "PINGAN_SHARE_KEY_JIASHAN",
        "PINGAN_QINGPU_FIRE_URL",
        "PINGAN_QINGPU_FIRE_TOKEN",
        "PINGAN_PINGHU_JINSHAN_URL",
        "PINGAN_QINGPU_TAX_DB_URL",
    ):
        assert name in message
    assert message.split("unset: ")[1].count("PINGAN_") == len(required_variables(s))


def test_prod_with_every_variable_set_starts(home):
    env = {**PROD_STORES, "PINGAN_HOME": str(home)}
    s = load_settings(env)
    full = {name: env.get(name, "x") for name in required_variables(s)}
    check_deployment(s, env=full)
    one_short = dict(full)
    one_short.pop("PINGAN_QINGPU_FIRE_TOKEN")
    with pytest.raises(DeploymentError, match=r"unset: PINGAN_QINGPU_FIRE_TOKEN \(see"):
        check_deployment(s, env=one_short)


def test_a_prod_run_missing_the_fire_api_fails_and_starts_no_simulator(home, monkeypatch):
    monkeypatch.setenv("PINGAN_DEPLOYMENT", "prod")
    monkeypatch.setenv("PINGAN_LAKE_URL", f"file://{home / 'lake'}")
    monkeypatch.setenv("PINGAN_LANDING_URL", f"file://{home / 'landing'}")
    s = load_settings()
    with pytest.raises(DeploymentError, match="qingpu_fire_alarms: unset: PINGAN_QINGPU_FIRE_URL"):
        ingest_day(s, date(2025, 3, 1), feeds=["qingpu_fire_alarms"])
    assert not (home / "lake" / "_batches").exists()  # nothing was attempted


def test_local_gets_the_simulated_endpoints_only_for_the_block(settings):
    specs = load_specs(settings.connectors_dir)
    with feed_sources(settings, [specs["qingpu_fire_alarms"], specs["qingpu_tax_registry"]]):
        assert os.environ["PINGAN_QINGPU_FIRE_URL"].startswith("http://127.0.0.1:")
        assert os.environ["PINGAN_QINGPU_FIRE_TOKEN"]
        assert (
            os.environ["PINGAN_QINGPU_TAX_DB_URL"]
            == f"sqlite:///{settings.home / 'sim/qingpu/tax_registry.sqlite'}"
        )
    assert "PINGAN_QINGPU_FIRE_URL" not in os.environ


def test_feed_specs_name_no_simulator():
    for path in (PROJECT_ROOT / "connectors").rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert "root: sim" not in text and "sqlite:///" not in text and "default_url" not in text, path


def _imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_under_pingan_imports_the_simulator():
    offenders = [
        str(p.relative_to(PROJECT_ROOT))
        for p in (PROJECT_ROOT / "pingan").rglob("*.py")
        if any(m.split(".")[0] == "pingan_sim" for m in _imported_modules(p))
    ]
    assert offenders == []


BLOCK_SIM = """
import importlib.abc, sys

class NoSimulator(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'pingan_sim':
            raise ImportError('pingan_sim is not installed')

sys.meta_path.insert(0, NoSimulator())
import pingan.cli.app, pingan.orchestration.pipeline, pingan.core.deployment, pingan.orchestration.dag_factory, pingan.orchestration.dag_tasks, pingan.cli.demo
import pingan.warehouse.build, pingan.sharing.publish, pingan.ops.status
assert not [m for m in sys.modules if m.startswith('pingan_sim')]
print('ok')
"""


def test_pingan_imports_with_the_simulator_unavailable():
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_SIM],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
