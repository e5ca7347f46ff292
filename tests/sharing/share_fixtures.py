"""A small published warehouse with the marts partner shares read (fct_incidents, fct_joint_operations,
fct_grid_events, mart_cross_border, with the contract's columns), holding realistic PII."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
from stdnum.cn import ric

from pingan.core.storage import Store
from pingan.sharing import manifest as mf

SHANGHAI = ZoneInfo("Asia/Shanghai")


def listed_files(shares: Store, manifest: dict) -> list[dict]:
    """Every data file a published manifest lists: its `files.json`, checked against the signed hash."""
    snapshot = mf.snapshot_prefix(manifest["partner"], manifest["dataset"], manifest["snapshot_id"])
    files = mf.snapshot_files(shares.get_bytes, snapshot, mf.read_manifest(manifest, snapshot + mf.MANIFEST))
    return [f.model_dump() for f in files]


def added_paths(manifest: dict) -> list[str]:
    """The files a manifest's listing adds since the snapshot before."""
    return [f["path"] for f in manifest["listing"]["added"]]


AS_OF = date(2025, 3, 2)

# jurisdiction, town, is_border_town
PLACES = [
    ("310118", "金泽镇", True),
    ("310118", "赵巷镇", False),
    ("320509", "黎里镇", True),
    ("320509", "松陵街道", False),
    ("330421", "西塘镇", True),
    ("330421", "魏塘街道", False),
]


def resident_id(n: int) -> str:
    body = f"330421{date(1970, 1, 1) + timedelta(days=97 * n):%Y%m%d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder check digit


def mobile(n: int) -> str:
    return f"1{3 + n % 7}{n * 7919 % 1_000_000_000:09d}"


def incident_rows() -> list[tuple]:
    rows = []
    for i in range(30):
        jurisdiction, town, border = PLACES[i % len(PLACES)]
        reported = datetime(2025, 3, 1, 6, 0, tzinfo=SHANGHAI) + timedelta(
            hours=2 * i
        )  # 1 Mar 06:00 .. 3 Mar 16:00
        rows.append(
            (
                f"{jurisdiction}:INC{i:04d}",
                jurisdiction,
                "feed",
                f"INC{i:04d}",
                "C01",
                "dispute",
                reported,
                reported + timedelta(minutes=1),
                reported + timedelta(minutes=6),
                None,
                300,
                town,
                border,
                "G-001",
                31.04123 + i / 1000,
                120.92345,
                f"{town}人民路{i}号",
                "派出所",
                "已调解",
                mobile(i % 5),
                f"{resident_id(i)};{resident_id(i + 100)}",
                f"src/{i}.csv",
                f"batch-{i % 3}",
                reported,
            )
        )
    return rows


INCIDENT_COLUMNS = """record_id varchar, jurisdiction_code varchar, source_feed varchar, source_record_id varchar,
    source_category_code varchar, category varchar, reported_at timestamptz, dispatched_at timestamptz,
    arrived_at timestamptz, closed_at timestamptz, dispatch_to_arrival_seconds bigint, town varchar,
    is_border_town boolean, grid_id varchar, latitude double, longitude double, address varchar,
    handling_unit varchar, disposition varchar, caller_phone varchar, involved_id_numbers varchar,
    source_file varchar, batch_id varchar, ingested_at timestamptz"""

JOINT_COLUMNS = """record_id varchar, jurisdiction_code varchar, source_feed varchar, operation_id varchar,
    source_mechanism varchar, mechanism varchar, operation_date date, location varchar, outcome varchar,
    linked_record_ids varchar, jurisdiction_a varchar, town_a varchar, units_a varchar, jurisdiction_b varchar,
    town_b varchar, units_b varchar, source_file varchar, batch_id varchar, ingested_at timestamptz"""


GRID_COLUMNS = """event_id varchar, jurisdiction_code varchar, source_feed varchar, source_event_type varchar,
    event_type varchar, grid_id varchar, town varchar, is_border_town boolean, is_cross_border boolean,
    discovered_at timestamptz, dispatched_at timestamptz, verified_at timestamptz, handled_at timestamptz,
    closed_at timestamptz, feedback_at timestamptz, is_closed boolean, is_overdue boolean, parties varchar,
    address varchar, handling_unit varchar, source_file varchar, batch_id varchar, ingested_at timestamptz"""

PARTY_NAMES = ["张伟", "王秀英", "李娜", "刘洋"]


def grid_event_rows() -> list[tuple]:
    rows = []
    for i in range(8):
        jurisdiction, town, border = PLACES[i % len(PLACES)]
        found = datetime(2025, 3, 1, 9, 30, tzinfo=SHANGHAI) + timedelta(hours=5 * i)
        rows.append(
            (f"{jurisdiction}:GE{i:04d}", jurisdiction, "grid", "纠纷", "dispute", f"G-{i:03d}", town, border,
             i % 2 == 0, found, found + timedelta(hours=1), None, None, None, None, False, False,
             f"{PARTY_NAMES[i % 4]};{PARTY_NAMES[(i + 1) % 4]}", f"{town}某路{i}号", "网格站", "ge.jsonl",
             f"ge-batch-{i % 2}", found)
        )  # fmt: skip
    return rows


def cross_border_rows() -> list[tuple]:
    return [
        (date(2025, 3, 1), "checkpoint", "310118", "CP-QP-01", "金泽卡口", 4),
        (date(2025, 3, 1), "checkpoint", "320509", "CP-WJ-01", "黎里卡口", 3),
        (date(2025, 3, 1), "checkpoint", "330421", "CP-JS-01", "西塘卡口", 2),
        (date(2025, 3, 1), "joint_operation", "330482", "joint_mediation", "联调", 1),
        (date(2025, 3, 1), "border_town_incident", "310118", "金泽镇", "金泽镇", 5),
        (date(2025, 3, 1), "border_town_incident", "320509", "黎里镇", "黎里镇", 5),
    ]


# whether write_warehouse gives the facts the build's row_hash column (dbt/macros/cross_db/row_hash.sql)
WITH_ROW_HASH = {"on": False}


def write_warehouse(path: Path, incidents: list[tuple], grid_events: list[tuple] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        con.execute(f"CREATE TABLE fct_incidents ({INCIDENT_COLUMNS})")
        con.executemany(f"INSERT INTO fct_incidents VALUES ({', '.join('?' * 24)})", incidents)
        con.execute(f"CREATE TABLE fct_joint_operations ({JOINT_COLUMNS})")
        con.execute("""INSERT INTO fct_joint_operations VALUES
            ('330482:OP1', '330482', 'pinghu_jinshan_joint_operations', 'OP1', '联调', 'joint_mediation',
             DATE '2025-03-01', '广陈镇—廊下镇交界', '调解成功', '330482:J1;310116:J2', '330482', '广陈镇',
             '广陈派出所', '310116', '廊下镇', '廊下派出所', 'op.csv', 'b-op', TIMESTAMPTZ '2025-03-02 02:00:00+08')""")
        con.execute(f"CREATE TABLE fct_grid_events ({GRID_COLUMNS})")
        grid = grid_event_rows() if grid_events is None else grid_events
        con.executemany(f"INSERT INTO fct_grid_events VALUES ({', '.join('?' * 23)})", grid)
        con.execute("""CREATE TABLE mart_cross_border (activity_month date, activity_kind varchar,
            jurisdiction_code varchar, subject varchar, subject_name varchar, activity_count bigint)""")
        con.executemany("INSERT INTO mart_cross_border VALUES (?, ?, ?, ?, ?, ?)", cross_border_rows())
        if WITH_ROW_HASH["on"]:
            for fact in ("fct_incidents", "fct_joint_operations", "fct_grid_events"):
                # as the build's macro: DuckDB's hash of the whole row (as a struct)
                con.execute(f"CREATE TABLE hashed AS SELECT f.*, hash(f) AS row_hash FROM {fact} f")
                con.execute(f"DROP TABLE {fact}")
                con.execute(f"ALTER TABLE hashed RENAME TO {fact}")
