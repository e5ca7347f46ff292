"""A snapshot's source batches are stored per load month and shared between snapshots: a night writes the
chunk of the month whose batches changed, the others stay as the previous snapshot named them, and a
partner (or `pingan lineage`) reading them gets every batch, verified against the signed manifest."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pytest
from share_fixtures import incident_rows, write_warehouse

from pingan.sharing import manifest as mf
from pingan.sharing.publish import publish

TODAY = date(2025, 3, 5)
PREFIX = mf.dataset_prefix("wujiang", "border_incidents")
LOADED = {"batch-0": date(2025, 2, 27), "batch-1": date(2025, 2, 28), "batch-2": date(2025, 3, 1),
          "batch-3": date(2025, 3, 2)}  # fmt: skip
QUARANTINED = {"batch-0": {"phone_format": 2}, "batch-3": {"id_number_checksum": 1, "phone_format": 4}}


def register_batches(warehouse) -> None:
    """raw.batches as the build writes it (warehouse/inputs.py), with these batches' load dates."""
    ids = sorted(LOADED)
    table = pa.table({
        "batch_id": ids, "source_feed": ["wujiang_incidents"] * 4, "entity": ["incident"] * 4,
        "jurisdiction_code": ["320509"] * 4, "load_date": [LOADED[b] for b in ids],
        "rows_written": [10, 11, 12, 13], "committed_at": pa.nulls(4, pa.timestamp("us", "UTC")),
        "rows_quarantined": [sum(QUARANTINED.get(b, {}).values()) for b in ids],
        "quarantine_by_rule": [json.dumps(QUARANTINED.get(b, {}), sort_keys=True) for b in ids],
        "raw_keys": pa.array([[] for _ in ids], pa.list_(pa.string())),
    })  # fmt: skip
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw")
        con.register("t", table)
        con.execute("CREATE TABLE raw.batches AS SELECT * FROM t")


def latest(shares) -> tuple[str, dict]:
    pointer = json.loads(shares.get_bytes(PREFIX + mf.LATEST))
    snapshot = mf.snapshot_prefix("wujiang", "border_incidents", pointer["snapshot_id"])
    return snapshot, json.loads(shares.get_bytes(snapshot + mf.MANIFEST))


def chunks(shares, snapshot: str) -> dict[str, str]:
    return {c["month"]: c["path"] for c in json.loads(shares.get_bytes(snapshot + mf.SOURCES))["chunks"]}


@pytest.fixture
def published(share_env, agreements_dir):
    settings, lake, shares = share_env
    # the rows of 2 March onwards come from a batch loaded on 2 March (the others' batches cycle)
    rows = [
        r[:22] + ("batch-3" if r[6].date() >= date(2025, 3, 2) else r[22],) + r[23:] for r in incident_rows()
    ]
    write_warehouse(settings.warehouse_path, rows)
    register_batches(settings.warehouse_path)

    def night(as_of: date, *, today: date = TODAY, full: bool = False) -> tuple[str, dict]:
        publish(settings, lake, shares, partners=["wujiang"], as_of=as_of, agreements_dir=agreements_dir,
                today=today, full=full)  # fmt: skip
        return latest(shares)

    return shares, night, settings.warehouse_path


def test_a_night_writes_the_chunk_of_the_month_its_batches_changed(published):
    shares, night, _ = published
    first, _ = night(date(2025, 3, 1))
    before = chunks(shares, first)
    assert set(before) == {"2025-02", "2025-03"}
    files_before = shares.list_stamped(PREFIX + "sources/")

    second, manifest = night(date(2025, 3, 2))  # batch-3, loaded in March, joins the share
    after = chunks(shares, second)
    assert after["2025-02"] == before["2025-02"]  # February's batches did not change: its chunk is kept
    assert after["2025-03"] != before["2025-03"]
    files_after = shares.list_stamped(PREFIX + "sources/")
    assert set(files_after) - set(files_before) == {PREFIX + after["2025-03"]}
    february = PREFIX + before["2025-02"]
    assert files_after[february] == files_before[february]  # not even rewritten: the stamp is the file's

    source = mf.read_sources(shares.get_bytes, second, manifest)
    assert source["batch_ids"] == ["batch-0", "batch-2", "batch-3"] and source["batch_count"] == 3
    by_id = {b["batch_id"]: b for b in source["batches"]}
    assert by_id["batch-3"] == {"batch_id": "batch-3", "feed": "wujiang_incidents", "load_date": "2025-03-02",
                                "status": "committed", "rows_written": 13, "rows_quarantined": 5,
                                "quarantine_by_rule": QUARANTINED["batch-3"]}  # fmt: skip
    assert manifest["quality"]["source_batches"] == {
        "batches": 3,
        "statuses": ["committed"],
        "rows_quarantined": 7,
    }


def test_an_altered_chunk_does_not_verify(published):
    shares, night, _ = published
    snapshot, manifest = night(date(2025, 3, 2))
    february = PREFIX + chunks(shares, snapshot)["2025-02"]
    altered = json.loads(shares.get_bytes(february))
    altered["batches"][0]["rows_quarantined"] = 0
    shares.put_bytes(february, json.dumps(altered).encode(), "application/json")
    with pytest.raises(mf.ManifestError, match=f"{february}: missing or not the source batches"):
        mf.read_sources(shares.get_bytes, snapshot, manifest)


def test_a_batch_the_warehouse_lacks_is_named_not_in_raw_zone(published):
    shares, night, warehouse = published
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DELETE FROM raw.batches WHERE batch_id = 'batch-0'")
    snapshot, manifest = night(date(2025, 3, 1))
    source = mf.read_sources(shares.get_bytes, snapshot, manifest)
    assert {b["batch_id"]: b["status"] for b in source["batches"]}["batch-0"] == "not_in_raw_zone"
    assert "unknown" in chunks(shares, snapshot)


def test_names_come_from_a_batchs_files_as_its_manifest_names_them_after_a_recommit(home):
    """Lake retention and erasure re-commit a batch under new file names after the build recorded its
    files in raw.batches: the guard's person names are then read from the files the day's manifest names."""
    from pingan import raw_zone
    from pingan.core.feed_spec import load_specs
    from pingan.core.settings import PROJECT_ROOT, load_settings
    from pingan.core.storage import Store
    from pingan.sharing.lineage import SourceBatches

    settings = load_settings()
    lake = Store(settings.lake_url, settings.s3)
    lake.ensure()
    renamed = "raw/grid_event_stage/jurisdiction=330421/load_date=2025-03-01/feed=jiashan_grid_events/batch=b1/part-r1.parquet"
    lake.write_parquet(renamed, pa.table({"parties": ["王小明;李四", "赵六"]}))
    record = json.loads(
        (PROJECT_ROOT / "tests/connectors/fixtures/manifests_v1/manifest-committed.json").read_text()
    )
    record.update(feed="jiashan_grid_events", entity="grid_event_stage", load_date="2025-03-01", batch_id="b1",
                  files={"raw": [renamed], "quarantine": []})  # fmt: skip
    raw_zone.commit(lake, record)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("""CREATE TABLE raw.batches AS SELECT 'b1' AS batch_id, 'jiashan_grid_events' AS source_feed,
        DATE '2025-03-01' AS load_date, 5 AS rows_written, 0 AS rows_quarantined, '{}' AS quarantine_by_rule,
        ['raw/grid_event_stage/jurisdiction=330421/load_date=2025-03-01/feed=jiashan_grid_events/batch=b1/part-00000.parquet'] AS raw_keys""")
    sources = SourceBatches(con, lake, load_specs(PROJECT_ROOT / "connectors"))
    assert sources.person_names(["b1"]) == {"王小明", "李四", "赵六"}

    record.update(batch_id="b2")  # a rerun replaced the batch: the build's record names a batch gone
    raw_zone.commit(lake, record)
    with pytest.raises(FileNotFoundError, match="batch b1 .* the lake no longer commits it"):
        SourceBatches(con, lake, load_specs(PROJECT_ROOT / "connectors")).person_names(["b1"])


def test_an_altered_or_deleted_chunk_is_written_again_not_carried_forward(published):
    shares, night, _ = published
    first, _ = night(date(2025, 3, 1))
    february, march = (PREFIX + chunks(shares, first)[m] for m in ("2025-02", "2025-03"))
    shares.put_bytes(february, b'{"batches": []}', "application/json")
    shares.delete(march)
    second, manifest = night(date(2025, 3, 2))
    source = mf.read_sources(shares.get_bytes, second, manifest)  # verifies every chunk it names
    assert source["batch_ids"] == ["batch-0", "batch-2", "batch-3"]


def test_retention_deletes_the_chunks_no_kept_snapshot_names(published, agreements_dir):
    from pingan.sharing.agreements import load_agreements
    from pingan.sharing.publish import enforce_retention

    shares, night, _ = published
    first, _ = night(date(2025, 3, 1), today=date(2025, 3, 1))
    second, manifest = night(date(2025, 3, 2), today=date(2025, 3, 2))
    replaced = PREFIX + chunks(shares, first)["2025-03"]  # March's chunk before batch-3 joined
    wujiang = load_agreements(agreements_dir)["wujiang"]
    cutoff = date(2025, 3, 2) + timedelta(days=wujiang.retention_days)  # the first snapshot expires
    assert enforce_retention(shares, wujiang, cutoff)
    assert not shares.exists(replaced)
    assert set(shares.list(PREFIX + "sources/")) == {PREFIX + p for p in chunks(shares, second).values()}
    assert mf.read_sources(shares.get_bytes, second, manifest)["batch_count"] == 3
