"""Small generated canonical batches and valid identifiers for the quality tests."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
from stdnum.cn import ric, uscc

from pingan.core.canonical import entity_schema

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"
SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=SH)


def resident_id(division: str = "310118", born: str = "19850612", seq: str = "123") -> str:
    body = division + born + seq
    return body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder check character


def uscc_code(region: str = "310118", org: str = "MA1FL0001") -> str:
    body = "91" + region + org
    return body + uscc.calc_check_digit(body)


def table(entity: str, rows: list[dict], jurisdiction: str = "310118") -> pa.Table:
    """A canonical batch; lineage columns are filled in unless a row sets them."""
    schema = entity_schema(entity)
    full = []
    for i, row in enumerate(rows):
        source_id = row.get("source_record_id", f"S{i:06d}")
        lineage = {
            "record_id": f"{jurisdiction}:{source_id}",
            "source_record_id": source_id,
            "jurisdiction_code": jurisdiction,
            "source_feed": f"test_{entity}",
            "source_file": "test.csv",
            "source_row": i + 1,
            "batch_id": "test-batch",
            "load_date": dt.date(2025, 3, 2),
            "ingested_at": T0 + dt.timedelta(days=60),
        }
        full.append(lineage | row)
    return pa.Table.from_pylist(full, schema=schema)


def incident_rows(n: int, seed: int = 1) -> list[dict]:
    """Clean incidents: every value passes every rule of the incident suite."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        reported = T0 + dt.timedelta(seconds=rng.randint(0, 80_000))
        dispatched = reported + dt.timedelta(seconds=rng.randint(20, 200))
        arrived = dispatched + dt.timedelta(seconds=rng.randint(60, 600))
        ids = [
            resident_id(born=f"19{rng.randint(50, 99)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}")
            for _ in range(rng.choice([0, 0, 1, 2]))
        ]
        rows.append(
            {
                "source_category_code": rng.choice(["0101", "0201", "0301"]),
                "reported_at": reported,
                "dispatched_at": dispatched,
                "arrived_at": arrived if i % 10 else None,  # some calls are never attended
                "closed_at": arrived + dt.timedelta(minutes=rng.randint(5, 90)),
                "town": rng.choice(["金泽镇", "朱家角镇", "练塘镇"]),
                "grid_id": f"G{rng.randint(1, 300):03d}",
                "latitude": 31.0 + rng.random() * 0.3 if i % 17 else None,
                "longitude": 120.9 + rng.random() * 0.4 if i % 17 else None,
                "address": "青浦区某路1号",
                "handling_unit": "青浦公安分局",
                "disposition": "已处置",
                "caller_phone": f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}" if i % 9 else None,
                "involved_id_numbers": ";".join(ids) or None,
            }
        )
    return rows


STAGES = ["discovered", "dispatched", "verified", "handled", "closed", "feedback", "follow_up"]


def _grid_event_stage(i: int, at: dt.datetime) -> dict:
    return {
        "event_id": f"310118:E{i // 7}",
        "stage": STAGES[i % 7],
        "stage_at": at,
        "source_event_type": "邻里纠纷",
        "grid_id": "G001",
        "town": "金泽镇",
        "is_cross_border": i % 3 == 0,
        "parties": "张三;李四",
    }


def _enterprise(i: int, at: dt.datetime) -> dict:
    return {
        "uscc": uscc_code(org=f"MA1FL{i:04d}"),
        "name": f"上海测试{i}有限公司",
        "legal_rep_name": "王五",
        "legal_rep_id_number": resident_id(seq=f"{i:03d}") if i % 4 else None,
        "industry_code": ["C3311", "F5123", "I65", None][i % 4],
        "town": "朱家角镇",
        "registration_status": "存续",
        "tax_credit_rating": ["A", "B", "M", "C", "D", None][i % 6],
        "updated_at": at,
    }


def _fire_inspection(i: int, at: dt.datetime) -> dict:
    return {
        "uscc": uscc_code(org=f"MA1FL{i:04d}"),
        "unit_name": f"测试{i}",
        "inspected_on": dt.date(2025, 3, 1),
        "hazards_found": i % 5,
        "hazards_rectified": (i % 5) // 2,
        "rectification_deadline": dt.date(2025, 3, 15) if i % 5 else None,
        "town": "练塘镇",
        "updated_at": at,
    }


def _fire_alarm(i: int, at: dt.datetime) -> dict:
    return {
        "device_id": f"D{i:05d}",
        "uscc": uscc_code(org=f"MA1FL{i % 7:04d}"),
        "source_alarm_type": "smoke",
        "raised_at": at,
        "confirmed_at": at + dt.timedelta(minutes=2) if i % 3 else None,
        "handled_at": at + dt.timedelta(minutes=30),
        "is_true_alarm": i % 4 == 0,
        "town": "金泽镇",
        "updated_at": at + dt.timedelta(hours=1),
    }


def _joint_operation(i: int, at: dt.datetime) -> dict:
    return {
        "source_mechanism": ["联查", "联管", "联调", "联防", "联宣"][i % 5],
        "operation_date": at.date(),
        "jurisdiction_a": "330482",
        "jurisdiction_b": "310116",
        "town_a": "广陈镇",
        "town_b": "廊下镇",
        "outcome": "完成",
        "linked_record_ids": "330482:A1;310116:B2" if i % 2 else None,
    }


ROWS = {
    f.__name__[1:]: f
    for f in (_grid_event_stage, _enterprise, _fire_inspection, _fire_alarm, _joint_operation)
}


def other_entity_rows(entity: str, n: int = 30) -> list[dict]:
    """Clean rows of the entities other than incident."""
    return [ROWS[entity](i, T0 + dt.timedelta(hours=i)) for i in range(n)]
