"""The per-feed manifest index is a cache the listing validates: a rerun, a withdrawal, a new day, a
corrupt or foreign index never change what readers see; only a stamp mismatch makes them read a manifest."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from pingan import raw_zone
from pingan.core.settings import load_settings
from pingan.core.storage import Store
from pingan.raw_zone import manifest_index

FIXTURE = Path(__file__).parent / "fixtures" / "manifests_v1" / "manifest-committed.json"
FEED = "jiashan_incidents"
FIRST = date(2025, 3, 1)


def commit_day(lake: Store, day: date, batch_id: str, feed: str = FEED) -> None:
    record = json.loads(FIXTURE.read_text(encoding="utf-8"))
    record.update(
        feed=feed, load_date=day.isoformat(), batch_id=batch_id, files={"raw": [], "quarantine": []}
    )
    raw_zone.commit(lake, record)


def batch_ids(lake: Store, feed: str | None = None) -> dict[tuple[str, date], str]:
    return {(m.feed, m.load_date): m.batch_id for m in raw_zone.committed_manifest_records(lake, feed)}


def manifest_reads(lake: Store, monkeypatch) -> list[str]:
    """Every manifest object the next readings fetch (the index itself excluded)."""
    reads: list[str] = []
    original = lake.get_bytes

    def counting(key: str):
        if key.startswith("_manifests/"):
            reads.append(key)
        return original(key)

    monkeypatch.setattr(lake, "get_bytes", counting)
    return reads


@pytest.fixture(params=["local", "s3"])
def lake(request, home, monkeypatch):
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PINGAN_LAKE_URL", f"s3://idx{uuid.uuid4().hex[:12]}-lake/pingan")
    settings = load_settings()
    store = Store(settings.lake_url, settings.s3)
    store.ensure()
    return store


def test_readings_follow_every_commit_and_read_only_what_changed(lake, monkeypatch):
    for i in range(5):
        commit_day(lake, FIRST + timedelta(days=i), f"b{i}")
    commit_day(lake, FIRST, "other0", feed="wujiang_incidents")
    assert len(batch_ids(lake)) == 6  # first reading: every manifest read, the indexes written
    assert lake.exists(manifest_index.index_key(FEED))

    reads = manifest_reads(lake, monkeypatch)
    assert batch_ids(lake)[(FEED, FIRST + timedelta(days=2))] == "b2"
    assert reads == []  # nothing changed: every manifest came from the index

    commit_day(lake, FIRST + timedelta(days=2), "rerun2")  # a rerun replaces a day's manifest
    commit_day(lake, FIRST + timedelta(days=5), "b5")  # a new day
    lake.delete(raw_zone.manifest_key(FEED, FIRST + timedelta(days=4)))  # a withdrawal
    reads.clear()
    seen = batch_ids(lake, FEED)
    assert seen == {(FEED, FIRST + timedelta(days=i)): b
                    for i, b in enumerate(["b0", "b1", "rerun2", "b3"]) } | {(FEED, FIRST + timedelta(days=5)): "b5"}  # fmt: skip
    assert sorted(reads) == sorted(
        raw_zone.manifest_key(FEED, FIRST + timedelta(days=d)) for d in (2, 5)
    )  # only the replaced and the new manifest were read
    reads.clear()
    assert batch_ids(lake, FEED) == seen and reads == []


@pytest.mark.parametrize(
    "damage", [b"{not json", b'{"format": 1, "entries": {"x": 1}}', b'{"format": 99, "entries": {}}']
)
def test_a_corrupt_or_foreign_index_costs_a_full_reading_not_a_wrong_answer(lake, damage):
    for i in range(3):
        commit_day(lake, FIRST + timedelta(days=i), f"b{i}")
    expected = batch_ids(lake)
    lake.put_bytes(manifest_index.index_key(FEED), damage)
    assert batch_ids(lake) == expected
    assert batch_ids(lake) == expected  # and the rewritten index serves the next reading


def test_an_index_naming_an_old_batch_is_not_believed(lake):
    """A stale index (as after a crash between a commit and the index rewrite) is caught by its stamp."""
    commit_day(lake, FIRST, "first")
    batch_ids(lake)
    stale = lake.get_bytes(manifest_index.index_key(FEED))
    commit_day(lake, FIRST, "rerun")
    lake.put_bytes(manifest_index.index_key(FEED), stale)
    assert batch_ids(lake) == {(FEED, FIRST): "rerun"}
