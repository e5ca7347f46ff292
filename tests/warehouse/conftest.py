"""Fixtures for warehouse builds: a private copy of the dbt project with small reference seeds, and
canonical raw-zone Parquet files written the way the raw zone writes them (pingan.core.canonical schemas)."""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from stdnum.cn import ric

from pingan.core.canonical import entity_schema
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.raw_zone import RawBatch

SHANGHAI = ZoneInfo("Asia/Shanghai")
FEED_JURISDICTION = {
    "qingpu_110_incidents": "310118",
    "wujiang_incidents": "320509",
    "jiashan_incidents": "330421",
    "qingpu_grid_events": "310118",
    "jiashan_grid_events": "330421",
    "qingpu_tax_registry": "310118",
    "qingpu_fire_inspections": "310118",
    "qingpu_fire_alarms": "310118",
}
# The entity each feed above delivers (for the generic RawZone.rows writer).
FEED_ENTITY = {
    "qingpu_grid_events": "grid_event_stage",
    "jiashan_grid_events": "grid_event_stage",
    "qingpu_tax_registry": "enterprise",
    "qingpu_fire_inspections": "fire_inspection",
    "qingpu_fire_alarms": "fire_alarm",
}

# Stand-ins for the simulator's seeds, used only when dbt/seeds/ has not been generated: same columns,
# a few rows. With the real seeds present, tests take codes and towns from them (see Reference).
FALLBACK_SEEDS = {
    "ref_jurisdictions.csv": """jurisdiction_code,name_zh,name_en,province,role,framework
310118,青浦区,Qingpu,上海市,hub,qingwujia
320509,吴江区,Wujiang,江苏省,partner,qingwujia
330421,嘉善县,Jiashan,浙江省,partner,qingwujia
330482,平湖市,Pinghu,浙江省,partner,pinghu_jinshan
310116,金山区,Jinshan,上海市,partner,pinghu_jinshan
""",
    "ref_towns.csv": """town_code,jurisdiction_code,town_name,is_border_town,centre_lat,centre_lon,is_synthetic_code
310118103,310118,金泽镇,true,31.0390,120.9220,true
310118104,310118,赵巷镇,false,31.1560,121.1960,true
320509107,320509,黎里镇,true,30.9330,120.7350,true
320509001,320509,松陵街道,false,31.1600,120.6420,true
330421101,330421,西塘镇,true,30.9460,120.8900,true
330421002,330421,魏塘街道,false,30.8420,120.9110,true
330482101,330482,广陈镇,true,30.8010,121.0900,true
310116103,310116,廊下镇,true,30.8110,121.1580,true
""",
    "ref_grids.csv": """grid_id,jurisdiction_code,town_name
310118103-001,310118,金泽镇
""",
    "ref_checkpoints.csv": """checkpoint_id,kind,name,jurisdiction_code,town_name,lat,lon,is_synthetic_name
CK-L-01,land_crossing,金泽镇—黎里镇省界道口01,310118,金泽镇,31.11200,120.88211,true
""",
}


@pytest.fixture
def dbt_dir(tmp_path) -> Path:
    """A private copy of the repository's dbt project (its dbt runs cannot touch the repository)."""
    target = tmp_path / "dbt"
    shutil.copytree(PROJECT_ROOT / "dbt", target, ignore=shutil.ignore_patterns("target", "logs"))
    seeds = target / "seeds"
    seeds.mkdir(exist_ok=True)
    for name, text in FALLBACK_SEEDS.items():
        if not (seeds / name).exists():
            (seeds / name).write_text(text, encoding="utf-8")
    return target


@pytest.fixture
def connectors_dir(tmp_path) -> Path:
    """A private copy of the feed specs (a test may edit a code mapping)."""
    target = tmp_path / "connectors"
    shutil.copytree(PROJECT_ROOT / "connectors", target)
    return target


@pytest.fixture
def wh_settings(home, dbt_dir, connectors_dir, monkeypatch):
    monkeypatch.setenv("PINGAN_DBT_DIR", str(dbt_dir))
    monkeypatch.setenv("PINGAN_CONNECTORS_DIR", str(connectors_dir))
    return load_settings()


class Reference:
    """Codes from the feed specs and towns from the seeds the build will load."""

    def __init__(self, seeds: Path, connectors: Path):
        self.specs = load_specs(connectors)
        with open(seeds / "ref_towns.csv", encoding="utf-8") as fh:
            self.towns = list(csv.DictReader(fh))

    def code(self, feed: str, category: str) -> str:
        mapping = self.specs[feed].code_mapping
        return next(code for code, m in mapping.items() if m.category == category)

    def town(self, jurisdiction: str, *, border: bool) -> str:
        flag = "true" if border else "false"
        return next(
            t["town_name"]
            for t in self.towns
            if t["jurisdiction_code"] == jurisdiction and t["is_border_town"] == flag
        )


@pytest.fixture
def reference(dbt_dir, connectors_dir) -> Reference:
    return Reference(dbt_dir / "seeds", connectors_dir)


def resident_id(n: int, birth: date = date(1985, 6, 15)) -> str:
    """A valid GB 11643 number (division 310118), distinct per n."""
    body = f"310118{birth:%Y%m%d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder check digit


def mobile(n: int) -> str:
    return f"139{n % 100_000_000:08d}"


class RawZone:
    """Writes canonical incident files into a lake (local or S3) and remembers their URIs per entity."""

    def __init__(self, lake: Store):
        self.lake = lake
        self.files: dict[str, list[str]] = {}
        self.batches: list[RawBatch] = []  # what the lake's manifests would list: pass these to build()

    def incidents(
        self,
        feed: str,
        rows: list[dict],
        *,
        batch_id: str,
        ingested_at: datetime,
        load_date: date | None = None,
    ) -> str:
        jurisdiction = FEED_JURISDICTION[feed]
        schema = entity_schema("incident")
        records = []
        for i, row in enumerate(rows):
            source_id = row["source_record_id"]
            reported = row.get("reported_at", datetime(2025, 3, 1, 8, 0, tzinfo=SHANGHAI))
            record = {
                "record_id": f"{jurisdiction}:{source_id}",
                "source_record_id": source_id,
                "jurisdiction_code": jurisdiction,
                "source_feed": feed,
                "source_file": f"{feed}/{batch_id}.src",
                "source_row": i + 1,
                "batch_id": batch_id,
                "load_date": load_date or ingested_at.date(),
                "ingested_at": ingested_at,
                "extra_columns": None,
                "source_category_code": row.get("source_category_code"),
                "reported_at": reported,
                "dispatched_at": row.get("dispatched_at", reported + timedelta(minutes=1)),
                "arrived_at": row.get("arrived_at", reported + timedelta(minutes=5, seconds=30)),
                "closed_at": row.get("closed_at"),
                "town": row.get("town"),
                "grid_id": "QP-JZ-001",
                "latitude": row.get("latitude", 31.0412),
                "longitude": row.get("longitude", 120.9234),
                "address": row.get("address", f"{row.get('town')}某路{i + 1}号"),
                "handling_unit": "金泽派出所",
                "disposition": row.get("disposition", "已处置"),
                "caller_phone": mobile(i),
                "involved_id_numbers": f"{resident_id(i)};{resident_id(i + 500)}",
            }
            records.append(record)
        key = f"raw/incident/source_feed={feed}/{batch_id}.parquet"
        self.lake.write_parquet(key, pa.Table.from_pylist(records, schema=schema))
        self._add(
            feed, "incident", jurisdiction, batch_id, load_date or ingested_at.date(), key, len(records)
        )
        return self.lake.uri(key)

    def joint_operations(self, rows: list[dict], *, batch_id: str, ingested_at: datetime) -> str:
        feed = "pinghu_jinshan_joint_operations"
        records = [
            {
                "record_id": f"330482:{row['op_id']}",
                "source_record_id": row["op_id"],
                "jurisdiction_code": "330482",
                "source_feed": feed,
                "source_file": f"{feed}/{batch_id}.csv",
                "source_row": i + 1,
                "batch_id": batch_id,
                "load_date": ingested_at.date(),
                "ingested_at": ingested_at,
                "source_mechanism": row["mechanism"],
                "operation_date": row["operation_date"],
                "jurisdiction_a": "330482",
                "jurisdiction_b": "310116",
                "town_a": "广陈镇",
                "town_b": "廊下镇",
                "location": "广陈镇—廊下镇交界",
                "units_a": "广陈派出所",
                "units_b": "廊下派出所",
                "outcome": "联合调处纠纷1起",
                "linked_record_ids": "330482:J1;310116:J2",
            }
            for i, row in enumerate(rows)
        ]
        key = f"raw/joint_operation/feed={feed}/{batch_id}.parquet"
        self.lake.write_parquet(key, pa.Table.from_pylist(records, schema=entity_schema("joint_operation")))
        self._add(feed, "joint_operation", "330482", batch_id, ingested_at.date(), key, len(records))
        return self.lake.uri(key)

    def _add(self, feed, entity, jurisdiction, batch_id, load_date, key, rows) -> None:
        self.files.setdefault(entity, []).append(self.lake.uri(key))
        self.batches.append(
            RawBatch(feed, entity, jurisdiction, load_date, batch_id, (self.lake.uri(key),), rows)
        )

    def withdraw(self, batch_id: str) -> None:
        """A rerun replaced this batch: the manifests no longer list it."""
        self.batches = [b for b in self.batches if b.batch_id != batch_id]

    def rows(
        self,
        feed: str,
        rows: list[dict],
        *,
        batch_id: str,
        ingested_at: datetime,
        load_date: date | None = None,
    ) -> str:
        """Any entity's rows: lineage filled in, each row's own columns as given (others null).
        A row's `source_record_id` defaults to its position; `record_id` derives from it."""
        jurisdiction, entity = FEED_JURISDICTION[feed], FEED_ENTITY[feed]
        records = []
        for i, row in enumerate(rows):
            source_id = row.get("source_record_id", f"{batch_id}-{i + 1}")
            records.append(
                {
                    "record_id": f"{jurisdiction}:{source_id}",
                    "source_record_id": source_id,
                    "jurisdiction_code": jurisdiction,
                    "source_feed": feed,
                    "source_file": f"{feed}/{batch_id}.src",
                    "source_row": i + 1,
                    "batch_id": batch_id,
                    "load_date": load_date or ingested_at.date(),
                    "ingested_at": ingested_at,
                    **{k: v for k, v in row.items() if k != "source_record_id"},
                }
            )
        key = f"raw/{entity}/feed={feed}/{batch_id}.parquet"
        self.lake.write_parquet(key, pa.Table.from_pylist(records, schema=entity_schema(entity)))
        self._add(feed, entity, jurisdiction, batch_id, load_date or ingested_at.date(), key, len(records))
        return self.lake.uri(key)


@pytest.fixture
def raw_zone(wh_settings) -> RawZone:
    lake = Store(wh_settings.lake_url, wh_settings.s3)
    lake.ensure()
    return RawZone(lake)


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A standalone Spark master and two workers on 127.0.0.1 (tests/spark_cluster.py), stopped afterwards;
    skipped with the reason only where Java or pyspark is missing."""
    from spark_cluster import ClusterUnavailable, running_cluster

    try:
        with running_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
            yield cluster
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))
