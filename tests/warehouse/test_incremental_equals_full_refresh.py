"""An incremental build always equals a full refresh, whatever happened in the lake.

Driven as an operator would: simulated sources, the real loads and gate, nightly incremental builds; then
a late day, a rerun that withdraws records from a day's file and one that changes a record. After each
step the published (incremental) warehouse is compared, table by table, with a full refresh of the same
raw zone built into a separate file.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import duckdb
import pytest
from sim_edits import withdraw_first_record

from pingan.core.feed_spec import load_specs
from pingan.core.settings import load_settings
from pingan.core.storage import Store
from pingan.orchestration.pipeline import build_warehouse, ingest_day, sources_for
from pingan.warehouse.compare import differences
from pingan_sim import simulate

pytestmark = pytest.mark.slow

D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
LATE = ["qingpu_110_incidents", "qingpu_grid_events"]  # not incremental, so a late day may follow D3's others


def assert_incremental_equals_full_refresh(settings, day: date, tmp_path) -> None:
    full = dataclasses.replace(settings, warehouse_path=tmp_path / f"full-{day}.duckdb")
    build_warehouse(full, full_refresh=True, build_date=day)
    assert differences(settings.warehouse_path, full.warehouse_path) == {}


def count(settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def change_first_wujiang_record(settings, day: date) -> str:
    """Rewrite the disposition of the first incident in Wujiang's landing file for `day`."""
    landing = Store(settings.landing_url)
    key = next(k for k in landing.list(f"wujiang/incidents/dt={day:%Y-%m-%d}/") if k.endswith(".jsonl"))
    lines = landing.get_bytes(key).decode("utf-8").splitlines()
    first = json.loads(lines[0])
    first["result"] = "复核后改判"  # Wujiang's field for the disposition
    lines[0] = json.dumps(first, ensure_ascii=False)
    landing.put_bytes(key, ("\n".join(lines) + "\n").encode("utf-8"), "application/x-ndjson")
    return f"320509:{first['incident_no']}"


def test_incremental_builds_equal_a_full_refresh(home, tmp_path):
    settings = load_settings()
    landing = Store(settings.landing_url)
    landing.ensure()
    simulate(settings.home, landing, D1, D3, seed=7, scale=0.05, defect_rate=0.01)
    feeds = list(load_specs(settings.connectors_dir))
    on_time = [f for f in feeds if f not in LATE]

    with sources_for(settings):
        # two ordinary nights
        for day in (D1, D2):
            ingest_day(settings, day)
            build_warehouse(settings, build_date=day)
        assert_incremental_equals_full_refresh(settings, D2, tmp_path)

        # D3: two feeds are late; the build goes on and says they are stale
        ingest_day(settings, D3, feeds=on_time)
        result = build_warehouse(settings, build_date=D3)
        assert sorted(result.stale_feeds) == sorted(LATE)
        ingest_day(settings, D3, feeds=LATE)
        result = build_warehouse(settings, build_date=D3)
        assert result.stale_feeds == []
        assert_incremental_equals_full_refresh(settings, D3, tmp_path)

        # reruns: Qingpu withdraws a call from D1's export, Wujiang corrects a record of D2
        withdrawn = withdraw_first_record(settings, D1)
        changed = change_first_wujiang_record(settings, D2)
        ingest_day(settings, D1, feeds=["qingpu_110_incidents"])
        ingest_day(settings, D2, feeds=["wujiang_incidents"])
        build_warehouse(settings, build_date=D3)

    assert count(settings, f"select count(*) from fct_incidents where record_id = '{withdrawn}'") == 0
    assert (
        count(settings, f"select disposition from fct_incidents where record_id = '{changed}'")
        == "复核后改判"
    )
    assert_incremental_equals_full_refresh(settings, D3, tmp_path)
