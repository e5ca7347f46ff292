"""The typed batch manifest: manifests written by the code before the model still load, and every attempt
(committed, blocked, failed, late, running) is written in one shape with the same field names."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from test_raw_zone import DAY, jiashan_csv

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed
from pingan.ops.status import collect_status
from pingan.raw_zone.manifest import Manifest

# Written by the pre-model code (commit 1894eb5): a commit, a blocked attempt, a late source, a running load.
FIXTURES = Path(__file__).parent / "fixtures" / "manifests_v1"
FEED = "jiashan_incidents"


def old(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def lake(settings):
    store = Store(settings.lake_url)
    store.ensure()
    return store


def put(lake: Store, key: str, record: dict) -> None:
    lake.put_bytes(key, json.dumps(record, ensure_ascii=False).encode(), "application/json")


@pytest.fixture
def old_lake(lake):
    """A lake holding only manifests and batch records the old code wrote."""
    committed = old("manifest-committed")
    put(lake, raw_zone.manifest_key(FEED, DAY), committed)
    for name in ("manifest-committed", "batch-blocked", "batch-late", "batch-running"):
        record = old(name)
        put(lake, raw_zone.batch_record_key(record["feed"], record["batch_id"]), record)
    return lake


def test_an_old_committed_manifest_loads_with_every_field():
    m = Manifest.from_json(old("manifest-committed"))
    assert (m.feed, m.load_date, m.status) == (FEED, DAY, "committed")
    assert (m.rows_read, m.rows_written, m.rows_quarantined) == (20, 18, 2)
    assert m.quarantine_by_rule == {"unparseable_timestamp": 2}
    assert m.files.raw[0].startswith("raw/incident/jurisdiction=330421/load_date=2025-03-01/")
    assert m.sources[0]["sha256"].startswith("c27bdc17") and m.sources[0]["bytes"] == 2503
    assert m.code_version.spec_fingerprint == "762be1397352eda6" and m.quality.gate_runs == 0
    assert m.error is None and m.balanced


def test_old_failure_and_running_records_load_with_empty_defaults():
    late = Manifest.from_json(old("batch-late"))
    assert late.status == "late" and late.error == "SourceMissing: no file for 2025-03-02"
    assert late.sources == [] and late.quality.critical_failures == [] and late.schema_fingerprint is None
    running = Manifest.from_json(old("batch-running"))
    assert (running.status, running.host, running.pid, running.finished_at) == (
        "running",
        "old-worker-7",
        24134,
        None,
    )
    # another host's load cannot be probed: running until a later attempt of the day follows it
    assert raw_zone.attempt_status(running, superseded=False) == "running"
    assert raw_zone.attempt_status(running, superseded=True) == "interrupted"
    blocked = Manifest.from_json(old("batch-blocked"))
    assert blocked.quality.batch_failures[0].rule == "rows_accepted" and blocked.files.raw == []


def _as_stored(again, stored):
    """`again` restricted to the keys `stored` has, at every level: a later version may add fields."""
    if isinstance(stored, dict) and isinstance(again, dict):
        return {k: _as_stored(again.get(k), v) for k, v in stored.items()}
    return again


@pytest.mark.parametrize("name", ["manifest-committed", "batch-blocked", "batch-late", "batch-running"])
def test_rewriting_an_old_record_keeps_its_field_names_and_values(name):
    stored = old(name)
    again = Manifest.from_json(stored).to_json()
    assert _as_stored(again, stored) == stored  # nothing renamed, nothing changed (fields may be added)
    added = {k: again[k] for k in set(again) - set(stored)}
    assert set(added) <= {
        "error",
        "host",
        "pid",
        "sources",
        "schema_fingerprint",
        "schema_drift",
        "cursor_before",
        "cursor_after",
        "quality",
        "code_version",
    }


def test_readers_follow_old_manifests(old_lake, settings):
    batches = raw_zone.committed_batches(old_lake)
    assert [(b.feed, b.load_date, b.rows) for b in batches] == [(FEED, DAY, 18)]
    assert batches[0].files[0] == old_lake.uri(old("manifest-committed")["files"]["raw"][0])
    assert batches[0].committed_at == "2026-12-01T23:49:21.525368+00:00"
    assert raw_zone.committed_manifest_records(old_lake) == [Manifest.from_json(old("manifest-committed"))]
    assert [r.status for r in raw_zone.attempt_records(old_lake)] == [
        "committed",
        "blocked",
        "late",
        "running",
    ]
    assert raw_zone.cursor_before(old_lake, FEED, date(2025, 3, 2)) is None

    feed = collect_status(settings, old_lake)["feeds"][FEED]
    assert feed["days_committed"] == 1 and feed["rows_written"] == 18
    assert feed["blocked_days"] == ["2025-03-01"]
    assert feed["problem_days"]["2025-03-02"] == {
        "status": "late",
        "error": "SourceMissing: no file for 2025-03-02",
    }
    statuses = {b["batch_id"]: (b["status"], b["is_current"]) for b in feed["batches"]}
    assert statuses[old("manifest-committed")["batch_id"]] == ("committed", True)


def test_every_attempt_is_written_in_one_shape(home, settings, lake):
    spec = load_specs(settings.connectors_dir)[FEED]
    jiashan_csv(home, rows=20, bad_rows=2)
    committed = ingest_feed(spec, DAY, settings, lake)
    jiashan_csv(home, rows=20, bad_rows=19)
    blocked = ingest_feed(spec, DAY, settings, lake)
    assert (committed.status, blocked.status) == ("committed", "blocked")
    raw_zone.record_attempt_failure(
        lake,
        feed=FEED,
        entity="incident",
        jurisdiction="330421",
        load_date=date(2025, 3, 2),
        batch_id="b-late",
        status="late",
        error="late",
        started_at="2025-03-02T01:00:00+00:00",
        finished_at="2025-03-02T01:00:01+00:00",
    )
    raw_zone.start_attempt(
        lake,
        feed=FEED,
        entity="incident",
        jurisdiction="330421",
        load_date=date(2025, 3, 3),
        batch_id="b-run",
        started_at="2025-03-03T01:00:00+00:00",
    )

    assert sorted(r.status for r in raw_zone.attempt_records(lake, FEED)) == [
        "blocked",
        "committed",
        "late",
        "running",
    ]
    stored = [raw_zone.read_json(lake, k) for k in lake.list(f"_batches/{FEED}/")]  # as on disk
    shapes = {r["status"]: set(r) for r in stored}
    assert len({frozenset(s) for s in shapes.values()}) == 1, shapes
    assert set(old("manifest-committed")) <= shapes["committed"]  # every field the old readers read
    assert raw_zone.committed_manifest_record(lake, FEED, DAY) == committed.manifest
    assert committed.manifest.rows_written == 18 and committed.quarantine_by_rule == {
        "unparseable_timestamp": 2
    }
    assert blocked.manifest.error.startswith("rows_accepted: ")
    assert blocked.rows_written == 0 and blocked.quarantine_by_rule["batch_blocked"] == 1


def test_a_commit_handed_the_old_dict_shape_is_stored_as_a_manifest(lake):
    stored = old("manifest-committed")
    raw_zone.commit(lake, stored)
    assert raw_zone.committed_manifest_record(lake, FEED, DAY) == Manifest.from_json(stored)
    unbalanced = {**stored, "rows_written": 17}
    with pytest.raises(AssertionError, match="refusing to commit"):
        raw_zone.commit(lake, unbalanced)
