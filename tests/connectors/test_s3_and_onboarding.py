"""A real S3 server (SeaweedFS on 127.0.0.1) under the landing zone and the lake; a new partner from YAML alone."""

from __future__ import annotations

import json
import shutil
from datetime import date

import duckdb
import pytest
import requests

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed

DAY = date(2025, 3, 2)


def wujiang_lines(n: int) -> bytes:
    rows = []
    for i in range(n):
        rows.append(
            {
                "incident_no": f"WJ{i:07d}",
                "category_code": "WJ-XS-01",
                "reported_at": f"2025-03-02T0{i % 10}:00:00Z",
                "dispatched_at": f"2025-03-02T0{i % 10}:01:30Z",
                "arrived_at": None,
                "closed_at": None,
                "town": "黎里镇",
                "grid": "WJ-LL-001",
                "latitude": 30.93,
                "longitude": 120.75,
                "address": "黎里镇某路",
                "unit": "黎里派出所",
                "result": "处理",
                "caller_mobile": "13900000001",
                "involved_ids": [],
            }
        )
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()


@pytest.fixture
def s3_settings(home, s3_server, monkeypatch, request):
    bucket = "t" + request.node.name.replace("_", "")[-20:].lower()
    monkeypatch.setenv("PINGAN_LAKE_URL", f"s3://{bucket}-lake/pingan")
    monkeypatch.setenv("PINGAN_LANDING_URL", f"s3://{bucket}-landing")
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    return load_settings()


def test_wujiang_from_s3_landing_into_s3_lake(s3_settings):
    landing = Store(s3_settings.landing_url, s3_settings.s3)
    landing.ensure()
    landing.put_bytes("wujiang/incidents/dt=2025-03-02/incidents_20250302.jsonl", wujiang_lines(120))
    lake = Store(s3_settings.lake_url, s3_settings.s3)
    lake.ensure()
    spec = load_specs(s3_settings.connectors_dir)["wujiang_incidents"]
    for _ in range(2):  # idempotent on S3 too
        result = ingest_feed(spec, DAY, s3_settings, lake)
    assert result.status == "committed" and result.rows_written == 120
    files = raw_zone.committed_files(lake)["incident"]
    assert len(files) == 1 and files[0].startswith("s3://")
    rows = lake.read_parquet([lake.key_of(f) for f in files])  # decrypted by the store's key
    con = duckdb.connect()
    con.register("rows", rows)
    # UTC 01:00Z is 09:00 in Asia/Shanghai: the instant is kept, the zone is the warehouse's
    con.execute("SET TimeZone='Asia/Shanghai'")
    n, first = con.execute("select count(distinct record_id), min(reported_at)::varchar from rows").fetchone()
    assert n == 120
    assert first.startswith("2025-03-02 08:00:00+08")
    assert result.manifest.sources[0]["name"].startswith("s3://")
    # a presigned URL (MinIO SDK) lets a reader without credentials fetch the committed manifest
    url = lake.presigned_get(raw_zone.manifest_key("wujiang_incidents", DAY))
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200 and fetched.json()["batch_id"] == result.batch_id


def test_a_new_partner_feed_loads_from_a_yaml_file_alone(home, tmp_path, monkeypatch):
    """昆山市 (Kunshan, 320583) joins: its incidents arrive as a GBK CSV with its own headers."""
    connectors = tmp_path / "connectors"
    shutil.copytree(PROJECT_ROOT / "connectors", connectors)
    (connectors / "incidents" / "kunshan.yaml").write_text(
        """
feed: kunshan_incidents
jurisdiction_code: "320583"
entity: incident
domain: police
description: Kunshan incidents, a made-up onboarding example (GBK CSV, own headers).
transport: {kind: file_drop, path: "kunshan/jq_{date:%Y-%m-%d}.csv"}
format: {kind: csv, encoding: gbk, delimiter: "|"}
primary_key: [编号]
code_mapping:
  KS01: {category: criminal, label: 盗窃}
  KS02: {category: dispute, label: 纠纷}
columns:
  编号: {required: true}
  时间: {name: reported_at, type: timestamp, format: "%Y%m%d%H%M%S", required: true}
  类别: {name: source_category_code, required: true}
  镇: {name: town, required: true}
  跨界: {name: disposition}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("PINGAN_CONNECTORS_DIR", str(connectors))
    src = home / "sim" / "kunshan" / "jq_2025-03-02.csv"
    src.parent.mkdir(parents=True)
    src.write_bytes(
        "编号|时间|类别|镇|跨界\nKS1|20250302081500|KS01|周庄镇|否\nKS2|20250302091500|KS02|锦溪镇|是\n".encode(
            "gbk"
        )
    )
    settings = load_settings()
    spec = load_specs(settings.connectors_dir)["kunshan_incidents"]
    lake = Store(settings.lake_url)
    result = ingest_feed(spec, DAY, settings, lake)
    assert (result.status, result.rows_written, result.rows_quarantined) == ("committed", 2, 0)
    rows = lake.read_parquet(result.manifest.files.raw).to_pylist()
    assert [r["record_id"] for r in rows] == ["320583:KS1", "320583:KS2"]
    assert rows[0]["town"] == "周庄镇" and rows[0]["reported_at"].hour == 8
