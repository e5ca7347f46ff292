"""Delivery edges the readers and the loader must get right on their own: a REST pull that ends before the
total the source stated, a JSON Lines file with a byte order mark, XLSX headers with merged or empty
cells, a missing cursor column, a record delivered twice with other values (a conflict, or a correction
where the feed declares corrections), and a renamed personal-data column kept out of extra_columns."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from pingan.core.canonical import entity_schema
from pingan.core.feed_spec import Corrections, load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.ingest.chunk import SourceChunk
from pingan.ingest.dedupe import CONFLICT, DUPLICATE, SUPERSEDED, Deduper, resolve_repeats
from pingan.ingest.formats.jsonl_reader import read_jsonl
from pingan.ingest.formats.xlsx_reader import read_xlsx
from pingan.ingest.load import MissingCursorColumn, advance_cursor, ingest_feed
from pingan.ingest.normalise import MASKED, BatchInfo, normalise
from pingan.ingest.transports.http_client import SourceHttpError
from pingan_sim import simulate
from pingan_sim.servers import SERVER_FAULTS, SourceServers
from pingan_sim.writers import xlsx_bytes

SPECS = load_specs(PROJECT_ROOT / "connectors")
DAY = date(2025, 3, 1)
TOKEN = "test-token-not-a-secret"
INFO = BatchInfo("20250301-000000-abcdef", DAY, datetime(2025, 3, 2, tzinfo=UTC))


# --- REST: the stated total ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("edges-home")
    simulate(home, Store(f"file://{home / 'landing'}"), DAY, DAY, seed=3, scale=0.05)
    return home


@pytest.mark.parametrize(
    ("feed", "pagination"),
    [("qingpu_fire_alarms", {"limit": 100}), ("qingpu_fire_inspections", {"page_size": 1})],
)
def test_an_empty_second_page_before_the_stated_total_fails_the_load(
    sim_home, tmp_path, monkeypatch, feed, pagination
):
    monkeypatch.setenv("PINGAN_HOME", str(sim_home))
    monkeypatch.setenv("PINGAN_LAKE_URL", f"file://{tmp_path / 'lake'}")
    settings = load_settings()
    spec = SPECS[feed]
    paged = spec.transport.pagination.model_copy(update=pagination)
    spec = spec.model_copy(update={"transport": spec.transport.model_copy(update={"pagination": paged})})
    lake = Store(settings.lake_url)
    lake.ensure()
    with SourceServers(settings.home, TOKEN) as servers:
        monkeypatch.setenv("PINGAN_QINGPU_FIRE_URL", servers.fire_url)
        monkeypatch.setenv("PINGAN_QINGPU_FIRE_TOKEN", TOKEN)
        good = ingest_feed(spec, DAY, settings, lake)
        assert good.status == "committed" and good.rows_read > 1
        marker = sim_home / "sim" / SERVER_FAULTS
        marker.write_text(json.dumps({"empty_later_page": [spec.transport.path]}), "utf-8")
        try:
            with pytest.raises(SourceHttpError) as err:
                ingest_feed(spec, DAY, settings, lake)
        finally:
            marker.unlink()
    message = str(err.value)
    assert f"{feed} {DAY}: source_total: expected {good.rows_read:,} items" in message
    assert "observed" in message and "previous commit of the day stays" in message


# --- readers ------------------------------------------------------------------------------------------
def test_jsonl_with_a_byte_order_mark_reads_its_first_record():
    data = b"\xef\xbb\xbf" + b'{"id": "A1"}\n{"id": "A2"}\n'
    chunks = list(read_jsonl(io.BytesIO(data), "f.jsonl"))
    assert [r["id"] for c in chunks for r in c.table.to_pylist()] == ["A1", "A2"]
    assert not [r for c in chunks for r in c.rejects]


@pytest.mark.parametrize(
    ("header", "merged", "message"),
    [
        (["事件编号", "发现时间", "派单时间"], ["B1:C1"], "header cells B1:C1 are merged"),
        (["事件编号", None, "派单时间"], None, "header cell B1 is empty"),
    ],
)
def test_an_xlsx_header_with_merged_or_empty_cells_fails_naming_the_cell(header, merged, message):
    data = xlsx_bytes("Sheet1", header, [["E1", "2025-03-01 08:00:00", "2025-03-01 09:00:00"]], merged=merged)
    with pytest.raises(ValueError, match=message) as err:
        list(read_xlsx(io.BytesIO(data), "grid.xlsx"))
    assert "grid.xlsx" in str(err.value)


def test_a_missing_cursor_column_names_feed_column_and_columns_present():
    spec = SPECS["qingpu_fire_alarms"]
    chunk = SourceChunk(
        "page-1", pa.table({"alarmId": ["A1"], "modifiedAt": ["x"]}), pa.array([1], pa.int64())
    )
    with pytest.raises(MissingCursorColumn) as err:
        advance_cursor(None, chunk, "updatedAt", spec)
    text = str(err.value)
    assert "qingpu_fire_alarms" in text and "'updatedAt'" in text and "['alarmId', 'modifiedAt']" in text


def test_a_renamed_personal_data_column_is_masked_in_extra_columns():
    spec = SPECS["wujiang_incidents"]
    rows = {c: [None] for c in spec.columns}
    rows |= {"incident_no": ["WJ1"], "category_code": [next(iter(spec.code_mapping))], "town": ["松陵街道"]}
    rows |= {"reported_at": ["2025-03-01T08:00:00+08:00"], "caller_tel": ["13812345678"], "remark": ["夜间"]}
    assert {s for s, c in spec.columns.items() if c.required} <= {k for k, v in rows.items() if v[0]}
    chunk = SourceChunk("f.jsonl", pa.table(rows), pa.array([1], pa.int64()))
    result = normalise(chunk, spec, INFO)
    extra = json.loads(result.good["extra_columns"][0].as_py())
    assert extra == {"caller_tel": MASKED, "remark": "夜间"}
    assert "13812345678" not in json.dumps(result.good.to_pylist(), default=str)


# --- repeats: duplicate, conflict, correction ---------------------------------------------------------
def _incidents(ids: list[str], towns: list[str], start_row: int = 1) -> pa.Table:
    schema = entity_schema("incident")
    n = len(ids)
    values = {
        "record_id": ids,
        "source_record_id": ids,
        "town": towns,
        "source_file": ["f.csv"] * n,
        "source_row": list(range(start_row, start_row + n)),
        "reported_at": [datetime(2025, 3, 1, 8, tzinfo=UTC)] * n,
    }
    return pa.table({f.name: pa.array(values.get(f.name, [None] * n), f.type) for f in schema}, schema=schema)


def _resolve(tmp_path, spec):
    lake = Store(f"file://{tmp_path / 'lake'}")
    lake.ensure()
    dedupe = Deduper(spec, INFO)
    first = dedupe.split(_incidents(["r1", "r2", "r3"], ["金泽镇", "朱家角镇", "练塘镇"]))
    later = dedupe.split(_incidents(["r1", "r2"], ["金泽镇", "白鹤镇"], start_row=10))
    assert first.num_rows == 3 and later.num_rows == 0
    lake.write_parquet("raw.parquet", first)
    resolved = resolve_repeats(lake, "raw.parquet", dedupe, spec, INFO)
    return resolved, lake.read_parquet("raw.parquet")


def test_a_repeat_with_other_values_is_a_conflict_not_a_duplicate(tmp_path):
    resolved, raw = _resolve(tmp_path, SPECS["qingpu_110_incidents"])
    rules = {
        r["source_record_id"]: (r["rule"], r["column"], r["value"]) for r in resolved.quarantine.to_pylist()
    }
    assert rules["r1"][0] == DUPLICATE
    assert rules["r2"] == (CONFLICT, "town", "r2: differs in town")
    assert dict(zip(raw["record_id"].to_pylist(), raw["town"].to_pylist(), strict=True))["r2"] == "朱家角镇"


def test_a_feed_declaring_corrections_keeps_the_latest_and_both_versions(tmp_path):
    spec = SPECS["qingpu_110_incidents"].model_copy(
        update={"corrections": Corrections(reason="the dispatch centre re-sends corrected calls")}
    )
    resolved, raw = _resolve(tmp_path, spec)
    assert resolved.replaced == 1
    assert dict(zip(raw["record_id"].to_pylist(), raw["town"].to_pylist(), strict=True)) == {
        "r1": "金泽镇",
        "r2": "白鹤镇",
        "r3": "练塘镇",
    }
    rules = {(r["source_record_id"], r["rule"]) for r in resolved.quarantine.to_pylist()}
    assert rules == {("r1", DUPLICATE), ("r2", SUPERSEDED)}
