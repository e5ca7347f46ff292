"""One contract, every feed: loads from the simulated source, maps to the canonical schema, is idempotent,
accounts for every row, and quarantines the structural defects the simulator injected."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pingan import raw_zone
from pingan.core.canonical import entity_schema
from pingan.core.deployment import feed_sources
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.ingest.load import RerunRefused, ingest_feed
from pingan.orchestration.pipeline import quality_gate

START, END = date(2025, 3, 1), date(2025, 3, 2)
FEEDS = sorted(load_specs(PROJECT_ROOT / "connectors"))
# Defects a loader must catch by itself, before any quality expectation: the row cannot be read,
# lacks a mandatory value, or repeats a record of the same delivery.
STRUCTURAL = {"missing_mandatory", "duplicate_delivery", "wrong_encoding", "truncated_file"}
VOLATILE = {"batch_id", "ingested_at"}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    from pingan_sim import simulate

    home = tmp_path_factory.mktemp("sim-home")
    landing = Store(f"file://{home / 'sim'}")  # the local deployment's landing root
    landing.ensure()
    simulate(home, landing, START, END, seed=7, scale=0.05, defect_rate=0.02)
    return home


@pytest.fixture
def feed_settings(simulated, tmp_path, monkeypatch):
    monkeypatch.setenv("PINGAN_HOME", str(simulated))
    monkeypatch.setenv("PINGAN_LAKE_URL", f"file://{tmp_path / 'lake'}")
    for var in (
        "PINGAN_LANDING_URL",
        "PINGAN_S3_ENDPOINT",
        "PINGAN_QINGPU_FIRE_URL",
        "PINGAN_PINGHU_JINSHAN_URL",
        "PINGAN_QINGPU_FIRE_TOKEN",
        "PINGAN_QINGPU_TAX_DB_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    return load_settings()


def _ledger(home: Path, feed: str, day: date) -> list[dict]:
    lines = (home / "sim" / "defects.jsonl").read_text(encoding="utf-8").splitlines()
    return [d for d in map(json.loads, lines) if d["feed"] == feed and d["date"] == day.isoformat()]


def _stable(table) -> list[dict]:
    return sorted(
        (dict((k, v) for k, v in r.items() if k not in VOLATILE) for r in table.to_pylist()),
        key=lambda r: r["record_id"],
    )


@pytest.mark.parametrize("feed", FEEDS)
def test_feed_contract(feed, feed_settings, simulated):
    spec = load_specs(feed_settings.connectors_dir)[feed]
    lake = Store(feed_settings.lake_url)
    lake.ensure()
    gate = quality_gate(feed_settings)
    with feed_sources(feed_settings, [spec]):
        first = [ingest_feed(spec, d, feed_settings, lake, gate=gate) for d in (START, END)]
        snapshot = {
            d: _stable(lake.read_parquet(raw_zone.committed_manifest_record(lake, feed, d).files.raw))
            for d in (START, END)
        }
        rerun = ingest_feed(spec, END, feed_settings, lake, gate=gate)
        if spec.incremental:  # an earlier day of a source updated in place cannot be re-read as it was
            with pytest.raises(RerunRefused):
                ingest_feed(spec, START, feed_settings, lake, gate=gate)

    for result in first:
        m = result.manifest
        assert result.status == "committed", m.quality
        assert m.rows_read > 0, f"{feed}: nothing read for {result.load_date}"
        assert m.rows_read == m.rows_written + m.rows_quarantined
        assert m.rows_written > 0.8 * m.rows_read, m.quarantine_by_rule
        assert m.sources, "the manifest names what was read"

    # canonical schema, stable ids, lineage
    table = lake.read_parquet(raw_zone.committed_manifest_record(lake, feed, START).files.raw)
    assert table.schema.equals(entity_schema(spec.entity))
    assert pc.all(pc.starts_with(table["record_id"], spec.jurisdiction_code + ":")).as_py()
    assert len(table["record_id"].unique()) == table.num_rows
    assert set(table["source_feed"].to_pylist()) == {feed}

    # idempotent: the rerun commits the same content for the day
    assert rerun.status == "committed" and rerun.batch_id != first[1].batch_id
    assert _stable(lake.read_parquet(rerun.manifest.files.raw)) == snapshot[END]
    if spec.incremental:  # the rerun used its day's window, not the latest cursor
        assert rerun.manifest.cursor_before == first[1].manifest.cursor_before
        assert first[1].manifest.cursor_before == first[0].manifest.cursor_after

    # structural defects injected into this feed are in quarantine, found by source record id
    for day in (START, END):
        defects = [d for d in _ledger(simulated, feed, day) if d["kind"] in STRUCTURAL and d["record_id"]]
        q = lake.read_parquet(
            raw_zone.committed_manifest_record(lake, feed, day).files.quarantine
        ).to_pylist()
        quarantined_text = [(r["source_record_id"] or "") + " " + (r["record"] or "") for r in q]
        for d in defects:
            assert any(d["record_id"] in t for t in quarantined_text), (
                f"{feed} {day}: defect not quarantined: {d}"
            )
