"""The raw zone: idempotent reruns, a killed load leaves nothing visible, drift kept, nothing lost."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from killed_load import killed_load

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.storage import Store, lake_store
from pingan.ingest.load import ingest_feed
from pingan.ingest.normalise import MissingColumns
from pingan.raw_zone import retention

DAY = date(2025, 3, 1)
HEADER = [
    "警情编号",
    "接警时间",
    "派警时间",
    "到场时间",
    "办结时间",
    "警情类型代码",
    "镇街",
    "网格",
    "经度",
    "纬度",
    "地址",
    "处警单位",
    "处置结果",
    "报警电话",
    "当事人证件号码",
]


def jiashan_csv(home: Path, rows: int = 300, header=HEADER, bad_rows: int = 0, extra_cells=()) -> Path:
    path = home / "sim" / "jiashan" / "incidents" / f"jiashan_jq_{DAY:%Y%m%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)]
    for i in range(rows):
        when = "2025/13/01 08:00" if i < bad_rows else f"2025/03/01 {i % 24:02d}:{i % 60:02d}"
        cells = [
            f"JS{i:06d}",
            when,
            "",
            "",
            "",
            "JS-ZA-01",
            "西塘镇",
            "G1",
            "120.89",
            "30.94",
            "西塘镇某路",
            "西塘派出所",
            "调解",
            "13900000000",
            "",
            *extra_cells,
        ]
        lines.append(",".join(cells[: len(header)]))
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8-sig"))
    return path


@pytest.fixture
def spec(settings):
    return load_specs(settings.connectors_dir)["jiashan_incidents"]


@pytest.fixture
def lake(settings):
    return lake_store(settings)  # the deployment's lake, with its key: a `pingan` child process encrypts


def committed_rows(lake: Store) -> list[str]:
    files = raw_zone.committed_files(lake).get("incident", [])
    if not files:
        return []
    # through the store: the raw zone is encrypted at rest, the store holds the key
    table = lake.read_parquet([lake.key_of(f) for f in files], columns=["record_id"])
    return sorted(table["record_id"].to_pylist())


def batches_on_disk(lake: Store, zone: str = "raw") -> set[str]:
    return {k.split("batch=")[1].split("/")[0] for k in lake.list(f"{zone}/")}


def test_rerun_of_a_day_replaces_it_and_never_duplicates(home, settings, spec, lake):
    settings = dataclasses.replace(settings, superseded_retention=timedelta(0))
    jiashan_csv(home, rows=300)
    first = ingest_feed(spec, DAY, settings, lake)
    second = ingest_feed(spec, DAY, settings, lake)
    assert first.status == second.status == "committed"
    assert first.batch_id != second.batch_id
    ids = committed_rows(lake)
    assert len(ids) == 300 and len(set(ids)) == 300
    # no build reads it and no retention window holds it: only the committed batch remains on disk
    assert batches_on_disk(lake) == {second.batch_id}
    assert retention.pending(lake) == []


def test_a_superseded_batch_stays_for_the_retention_window(home, settings, spec, lake):
    jiashan_csv(home, rows=50)
    first = ingest_feed(spec, DAY, settings, lake)  # default window: 60 minutes
    second = ingest_feed(spec, DAY, settings, lake)
    assert batches_on_disk(lake) == batches_on_disk(lake, "quarantine") == {first.batch_id, second.batch_id}
    assert [p.batch_id for p in retention.pending(lake)] == [first.batch_id]
    assert retention.sweep(lake, retention=settings.superseded_retention) == 0
    later = datetime.now(UTC) + settings.superseded_retention + timedelta(seconds=1)
    assert retention.sweep(lake, retention=settings.superseded_retention, now=later) == 2  # raw + quarantine
    assert batches_on_disk(lake) == batches_on_disk(lake, "quarantine") == {second.batch_id}
    assert retention.pending(lake) == []


def test_a_running_builds_lease_holds_its_batches_and_a_dead_ones_does_not(home, settings, spec, lake):
    settings = dataclasses.replace(settings, superseded_retention=timedelta(0))
    jiashan_csv(home, rows=50)
    first = ingest_feed(spec, DAY, settings, lake)
    with retention.build_lease(lake, [first.batch_id]) as lease:
        assert lake.exists(lease.key)
        second = ingest_feed(spec, DAY, settings, lake)  # the rerun's sweep must leave the leased batch
        assert batches_on_disk(lake) == {first.batch_id, second.batch_id}
    assert not lake.exists(lease.key)
    assert retention.sweep(lake, retention=timedelta(0)) == 2
    assert batches_on_disk(lake) == {second.batch_id}

    # a build killed without releasing its lease: its process is gone, so the lease no longer counts
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = dataclasses.replace(lease, build_id="dead", pid=int(done.stdout), batch_ids=[second.batch_id])
    lake.put_bytes(dead.key, json.dumps(dataclasses.asdict(dead)).encode())
    third = ingest_feed(spec, DAY, settings, lake)
    assert batches_on_disk(lake) == {third.batch_id}
    assert not lake.exists(dead.key)


def test_every_row_is_written_or_quarantined_with_a_reason(home, settings, spec, lake):
    jiashan_csv(home, rows=200, bad_rows=7)
    result = ingest_feed(spec, DAY, settings, lake)
    m = result.manifest
    assert (m.rows_read, m.rows_written, m.rows_quarantined) == (200, 193, 7)
    q = lake.read_parquet(m.files.quarantine).to_pylist()
    assert {(r["rule"], r["column"], r["value"]) for r in q} == {
        ("unparseable_timestamp", "接警时间", "2025/13/01 08:00")
    }
    assert sorted(r["source_row"] for r in q) == list(range(2, 9))  # header is line 1
    assert all(r["source_record_id"].startswith("JS") for r in q)
    assert m.sources[0]["sha256"] and m.sources[0]["bytes"] > 0


def test_new_source_column_is_kept_and_reported(home, settings, spec, lake):
    jiashan_csv(home, rows=10, header=[*HEADER, "备注"], extra_cells=["夜间巡逻发现"])
    result = ingest_feed(spec, DAY, settings, lake)
    assert result.manifest.schema_drift.new_columns == ["备注"]
    table = lake.read_parquet(result.manifest.files.raw)
    assert table.column("extra_columns")[0].as_py() == '{"备注": "夜间巡逻发现"}'


def test_missing_mandatory_column_rejects_the_batch_with_a_clear_error(home, settings, spec, lake):
    jiashan_csv(home, rows=10, header=[h for h in HEADER if h != "接警时间"])
    with pytest.raises(MissingColumns, match="接警时间"):
        ingest_feed(spec, DAY, settings, lake)
    assert raw_zone.committed_manifest_record(lake, spec.feed, DAY) is None


def _pingan(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pingan.cli.app", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_a_load_killed_between_files_and_commit_leaves_nothing_visible(home, settings, lake):
    jiashan_csv(home, rows=500)
    killed = killed_load("jiashan_incidents", DAY)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert lake.list("raw/"), "the killed load had written its files"
    assert raw_zone.committed_manifest_record(lake, "jiashan_incidents", DAY) is None
    assert committed_rows(lake) == []  # readers see nothing of it

    rerun = _pingan(
        "ingest", "--date", DAY.isoformat(), "--feed", "jiashan_incidents", "--no-gate", env=dict(os.environ)
    )
    assert rerun.returncode == 0, rerun.stderr
    manifest = raw_zone.committed_manifest_record(lake, "jiashan_incidents", DAY)
    assert manifest.rows_written == 500
    assert len(committed_rows(lake)) == 500
    batches = {k.split("batch=")[1].split("/")[0] for k in lake.list("raw/")}
    assert batches == {manifest.batch_id}, "the crashed batch's orphan files were cleaned up"


def test_a_record_repeated_across_chunks_and_within_one_is_loaded_once(home, settings, spec, lake):
    path = jiashan_csv(home, rows=400)
    lines = path.read_bytes().split(b"\n")
    # JS000003 again near the end (another chunk), JS000399 twice in a row (same chunk)
    path.write_bytes(b"\n".join(lines[:-1] + [lines[4], lines[400], b""]))
    small_blocks = spec.model_copy(update={"format": spec.format.model_copy(update={"block_bytes": 2048})})
    result = ingest_feed(small_blocks, DAY, settings, lake)
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (402, 400, 2)
    q = lake.read_parquet(result.manifest.files.quarantine).to_pylist()
    assert sorted((r["source_record_id"], r["source_row"], r["rule"]) for r in q) == [
        ("JS000003", 402, "duplicate_record"),
        ("JS000399", 403, "duplicate_record"),
    ]
    assert len(committed_rows(lake)) == 400
