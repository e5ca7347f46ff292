"""Checks that need the lake: stage order across days, killed loads shown as interrupted, and reader
rejects that still name their source record."""

from __future__ import annotations

import json
import signal
from datetime import date, timedelta

from killed_load import killed_load

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed
from pingan.ops.status import collect_status
from pingan.orchestration.pipeline import quality_gate
from pingan.quality import stage_history

D1, D2 = date(2025, 3, 1), date(2025, 3, 2)


def _grid_line(event: str, stage: str, when: str) -> str:
    return json.dumps(
        {
            "event_id": event,
            "stage": stage,
            "stage_time": when,
            "event_type": "MD01",
            "town": "金泽镇",
            "grid_code": "G1",
        },
        ensure_ascii=False,
    )


def _grid_file(home, day: date, lines: list[str]) -> None:
    path = home / "sim" / "qingpu" / "grid" / f"grid_events_{day:%Y%m%d}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_later_stage_on_a_later_day_is_checked_against_committed_stages(home, settings):
    spec = load_specs(settings.connectors_dir)["qingpu_grid_events"]
    codes = quality_gate(settings)
    lake = Store(settings.lake_url)
    lake.ensure()
    events = [f"E{i:03d}" for i in range(60)]
    _grid_file(home, D1, [_grid_line(e, "发现", "2025-03-01 10:00:00") for e in events])
    first = ingest_feed(spec, D1, settings, lake, gate=codes)
    assert first.status == "committed", first.manifest.error
    # E000 is dispatched before it was discovered (the day before); the others in order
    _grid_file(
        home,
        D2,
        [_grid_line("E000", "派单", "2025-03-01 09:00:00")]
        + [_grid_line(e, "派单", "2025-03-02 09:00:00") for e in events[1:]],
    )
    second = ingest_feed(spec, D2, settings, lake, gate=codes)
    assert second.status == "committed", second.manifest.error
    q = lake.read_parquet(second.manifest.files.quarantine).to_pylist()
    assert [(r["source_record_id"], r["rule"], r["source_row"]) for r in q] == [
        ("E000:派单", "quality:event_stages_in_order", 1)
    ]
    assert second.rows_written == 59


def test_stage_history_reads_only_the_days_within_the_rules_window(home, settings):
    """The night's cross-day check reads a bounded window of days, not the feed's whole history."""
    spec = load_specs(settings.connectors_dir)["qingpu_grid_events"]
    codes = quality_gate(settings)
    lake = Store(settings.lake_url)
    lake.ensure()
    window = stage_history.history_days(settings.expectations_dir)
    assert window == 90  # declared in expectations/grid_event_stage.json
    old, near, today = D1, D1 + timedelta(days=window - 5), D1 + timedelta(days=window + 3)
    for day in (old, near):
        _grid_file(home, day, [_grid_line(f"E{i:03d}", "发现", f"{day} 10:00:00") for i in range(40)])
        assert ingest_feed(spec, day, settings, lake, gate=codes).status == "committed"
    files = stage_history.history_files(lake, "qingpu_grid_events", today, window)
    near_files = raw_zone.committed_manifest_record(lake, "qingpu_grid_events", near).files.raw
    assert files == [lake.uri(k) for k in near_files]  # the day 93 days back is not read


def test_a_killed_load_leaves_an_interrupted_batch_record(home, settings):
    path = home / "sim" / "jiashan" / "incidents" / f"jiashan_jq_{D1:%Y%m%d}.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(
        "\ufeff警情编号,接警时间,警情类型代码,镇街\nJ1,2025/03/01 08:00,JS-ZA-01,西塘镇\n".encode()
    )
    killed = killed_load("jiashan_incidents", D1)
    assert killed.returncode == -signal.SIGKILL
    lake = Store(settings.lake_url)
    feed = collect_status(settings, lake)["feeds"]["jiashan_incidents"]
    (batch,) = feed["batches"]
    assert batch["status"] == "interrupted"
    assert feed["problem_days"][D1.isoformat()]["status"] == "interrupted"
    assert raw_zone.committed_manifest_record(lake, "jiashan_incidents", D1) is None


def test_reader_rejects_carry_their_record_id_and_one_rule_name(home, settings):
    spec = load_specs(settings.connectors_dir)["qingpu_110_incidents"]
    header = "接警编号,报警时间,警情类别代码,所属镇街"
    good = [f"Q{i:04d},2025-03-01 08:00:00,010100,金泽镇" for i in range(40)]
    path = home / "sim" / "qingpu" / "110" / f"110接处警_{D1:%Y%m%d}.csv"
    path.parent.mkdir(parents=True)
    body = (header + "\n" + "\n".join(good) + "\n").encode("gb18030")
    body += "Q9001,2025-03-01 09:00:00,010100,朱家角镇\n".encode()  # a UTF-8 line in a GB18030 file
    body += b"Q9002,2025-03-01 09:00:00,010100,\xff\xfe\n"  # bytes that are neither
    body += "Q9003,2025-03-01 09:00:00,010100,金泽镇,多余,多余\n".encode("gb18030")  # too many fields
    path.write_bytes(body)
    lake = Store(settings.lake_url)
    lake.ensure()
    result = ingest_feed(spec, D1, settings, lake)
    q = lake.read_parquet(result.manifest.files.quarantine).to_pylist()
    assert sorted((r["source_record_id"], r["rule"], r["source_row"]) for r in q) == [
        ("Q9001", "wrong_encoding", 42),
        ("Q9002", "wrong_encoding", 43),
        ("Q9003", "malformed_row", 44),
    ]
    assert all(r["source_file"] == str(path) for r in q)
