"""The gate against the simulator's ledger, every feed over two days: every injected defect is in
quarantine (full recall) and every quarantined row is a ledgered defect (no false positive)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed
from pingan.orchestration.pipeline import quality_gate, sources_for

pytestmark = pytest.mark.slow  # about 40 s: nine feeds, two days, with the gate
DAYS = (date(2025, 3, 4), date(2025, 3, 5))
FEEDS = sorted(load_specs(PROJECT_ROOT / "connectors"))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from pingan_sim import simulate

    home = tmp_path_factory.mktemp("recall")
    landing = Store(f"file://{home / 'sim'}")  # the local deployment's landing root
    landing.ensure()
    simulate(home, landing, DAYS[0], DAYS[-1], seed=7, scale=0.15, defect_rate=0.02)
    mp = pytest.MonkeyPatch()
    mp.setenv("PINGAN_HOME", str(home))
    for var in (
        "PINGAN_LAKE_URL",
        "PINGAN_LANDING_URL",
        "PINGAN_S3_ENDPOINT",
        "PINGAN_QINGPU_FIRE_URL",
        "PINGAN_PINGHU_JINSHAN_URL",
        "PINGAN_QINGPU_FIRE_TOKEN",
        "PINGAN_QINGPU_TAX_DB_URL",
    ):
        mp.delenv(var, raising=False)
    settings = load_settings()
    lake = Store(settings.lake_url)
    lake.ensure()
    gate = quality_gate(settings)
    specs = load_specs(settings.connectors_dir)
    with sources_for(settings):
        for feed in FEEDS:
            for day in DAYS:
                result = ingest_feed(specs[feed], day, settings, lake, gate=gate)
                assert result.status == "committed", result.manifest.error
    ledger = [json.loads(x) for x in (home / "sim" / "defects.jsonl").read_text("utf-8").splitlines()]
    yield lake, ledger
    mp.undo()


@pytest.mark.parametrize("feed", FEEDS)
def test_full_recall_and_no_false_positive(loaded, feed):
    lake, ledger = loaded
    for day in DAYS:
        entries = [e for e in ledger if e["feed"] == feed and e["date"] == day.isoformat()]
        manifest = raw_zone.committed_manifest_record(lake, feed, day)
        q = lake.read_parquet(manifest.files.quarantine).to_pylist()
        texts = [(r["source_record_id"] or "") + " " + (r["record"] or "") for r in q]
        missed = [e for e in entries if e["record_id"] and not any(e["record_id"] in t for t in texts)]
        assert not missed, f"{feed} {day}: defects not quarantined: {missed[:5]}"
        ids = [e["record_id"] for e in entries if e["record_id"]]
        unexplained = [r for r, t in zip(q, texts, strict=True) if not any(i in t for i in ids)]
        anonymous = Counter(e["kind"] for e in entries if not e["record_id"])  # e.g. the id itself missing
        # a melted feed quarantines one row per stage of a source row: count source rows
        assert len({r["source_row"] for r in unexplained}) <= sum(anonymous.values()), (
            f"{feed} {day}: clean rows quarantined: {[(r['rule'], r['source_record_id']) for r in unexplained[:5]]}"
        )
        assert all(r["source_row"] is not None and r["source_file"] for r in q)


def test_the_ledger_exercises_every_kind(loaded):
    _, ledger = loaded
    kinds = Counter(e["kind"] for e in ledger)
    assert set(kinds) >= {
        "bad_id_checksum",
        "bad_uscc_checksum",
        "unknown_category_code",
        "stage_order",
        "missing_mandatory",
        "duplicate_delivery",
        "coord_outside_delta",
        "wrong_encoding",
    }
    assert sum(kinds.values()) > 50
