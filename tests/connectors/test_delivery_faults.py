"""Every delivery fault, on every feed it can happen to, loaded over a good day: a broken delivery is
blocked and the good day stays the truth; a broken row is quarantined with its line and rule, or cleaned."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed
from pingan.ops.status import collect_status
from pingan.orchestration.pipeline import quality_gate, sources_for
from pingan.quality.batch_rules import judge_batch
from pingan_sim.delivery_faults import BATCH_FAULTS, FAULTS, NotApplicable, deliver_fault

pytestmark = pytest.mark.slow  # about a minute: every feed, every fault
DAY = date(2025, 3, 3)
SPECS = load_specs(PROJECT_ROOT / "connectors")
CASES = [(f, k) for f in sorted(SPECS) for k in FAULTS]


@pytest.fixture(scope="module")
def simulated_day(tmp_path_factory) -> Path:
    from pingan_sim import simulate

    home = tmp_path_factory.mktemp("faults-sim")
    landing = Store(f"file://{home / 'sim'}")  # the local deployment's landing root
    landing.ensure()
    simulate(home, landing, DAY, DAY, seed=5, scale=0.05, defect_rate=0.02)
    return home


@pytest.fixture
def fault_home(simulated_day, tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    shutil.copytree(simulated_day, home)
    monkeypatch.setenv("PINGAN_HOME", str(home))
    for var in (
        "PINGAN_LAKE_URL",
        "PINGAN_LANDING_URL",
        "PINGAN_S3_ENDPOINT",
        "PINGAN_QINGPU_FIRE_URL",
        "PINGAN_PINGHU_JINSHAN_URL",
        "PINGAN_QINGPU_FIRE_TOKEN",
        "PINGAN_QINGPU_TAX_DB_URL",
        "PINGAN_FAULT",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


def _load(settings, lake, spec):
    with sources_for(settings, [spec.feed]):
        return ingest_feed(spec, DAY, settings, lake, gate=quality_gate(settings))


@pytest.mark.parametrize(("feed", "kind"), CASES)
def test_fault_over_a_good_day(feed, kind, fault_home):
    settings = load_settings()
    spec = SPECS[feed]
    lake = Store(settings.lake_url)
    lake.ensure()
    good = _load(settings, lake, spec)
    assert good.status == "committed", good.manifest.get("error")
    good_ids = sorted(lake.read_parquet(good.manifest["files"]["raw"])["record_id"].to_pylist())
    landing = Store(settings.landing_url)
    try:
        entry = deliver_fault(fault_home, landing, spec, DAY, kind)
    except NotApplicable as exc:
        pytest.skip(str(exc))
    assert (fault_home / "sim" / "defects.jsonl").read_text("utf-8").count(f'"kind": "{kind}"') == 1

    second = _load(settings, lake, spec)
    current = raw_zone.committed_manifest(lake, feed, DAY)
    if kind in BATCH_FAULTS:
        assert second.status == "blocked", (second.quarantine_by_rule, second.manifest["quality"])
        assert current["batch_id"] == good.batch_id, "the good day stays the truth"
        assert lake.read_parquet(current["files"]["raw"]).num_rows == good.rows_written
        problem = collect_status(settings, lake)["feeds"][feed]["problem_days"][DAY.isoformat()]
        assert problem["status"] == "blocked" and problem["error"], problem
        return

    if judge_batch(spec, second.rows_read, second.rows_quarantined, {}):  # the broken row is most of the day
        assert second.status == "blocked" and current["batch_id"] == good.batch_id
        return
    assert second.status == "committed", second.manifest.get("error")
    q = lake.read_parquet(current["files"]["quarantine"]).to_pylist()
    loaded = lake.read_parquet(current["files"]["raw"])
    rid = entry["record_id"]
    if kind in ("nul_in_record_id", "oversized_field"):
        rule = "control_character" if kind == "nul_in_record_id" else "oversized_field"
        hits = [r for r in q if r["rule"] == rule]
        assert hits, {r["rule"] for r in q}
        assert all(r["source_row"] and r["source_file"] for r in hits)
        if kind == "oversized_field":
            assert {r["source_record_id"].split(":")[0] for r in hits} == {rid}
            assert all(len(r["value"]) < 300 and "bytes)" in r["value"] for r in hits)
        assert second.rows_written == good.rows_written - len(hits)
    else:  # cleaned, not quarantined: the same records as the good day
        assert sorted(loaded["record_id"].to_pylist()) == good_ids
        assert second.rows_quarantined == good.rows_quarantined
        if kind == "lowercase_check_x":
            column = next(c.name for c in spec.columns.values() if c.name == "involved_id_numbers")
            row = next(r for r in loaded.to_pylist() if r["source_record_id"] == rid)
            assert row[column].split(";")[0].endswith("X")
