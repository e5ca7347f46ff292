"""Read the simulator's output back in each feed's native format, the way a careful connector would.

Every reader returns `Record`s: the source id, the fields as text (None when empty), and where the record
sits, so the tests can check each ledgered defect in the file itself and that clean records are clean.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import openpyxl
from stdnum.cn import ric, uscc

from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT

SEEDS = Path(__file__).resolve().parents[2] / "dbt" / "seeds"
DELTA = (27.0, 35.5, 114.8, 123.0)


@dataclass
class Record:
    record_id: str | None
    fields: dict[str, object]
    file: str
    position: int  # line or row number, 1 = first data record
    raw: bytes = b""
    encoding: str = ""  # the encoding the line really decoded with
    complete: bool = True


@dataclass(frozen=True)
class Layout:
    """Where a feed keeps what the checks look at (source column names)."""

    id: str
    mapping: str | None = None
    code: str | None = None
    person_ids: str | None = None
    uscc: str | None = None
    stages: tuple[str, ...] = ()
    mandatory: tuple[str, ...] = ()
    coords: tuple[str, str] | None = None
    extra: dict = field(default_factory=dict)


LAYOUTS = {
    "qingpu_110_incidents": Layout(
        "接警编号",
        "qingpu_110_incidents",
        "警情类别代码",
        "涉事人身份证号",
        None,
        ("报警时间", "派警时间", "到达时间", "结案时间"),
        ("接警编号", "报警时间", "警情类别代码", "所属镇街"),
        ("纬度", "经度"),
    ),
    "wujiang_incidents": Layout(
        "incident_no",
        "wujiang_incidents",
        "category_code",
        "involved_ids",
        None,
        ("reported_at", "dispatched_at", "arrived_at", "closed_at"),
        ("incident_no", "reported_at", "category_code", "town"),
        ("latitude", "longitude"),
    ),
    "jiashan_incidents": Layout(
        "警情编号",
        "jiashan_incidents",
        "警情类型代码",
        "当事人证件号码",
        None,
        ("接警时间", "派警时间", "到场时间", "办结时间"),
        ("警情编号", "接警时间", "警情类型代码", "镇街"),
        ("纬度", "经度"),
    ),
    "qingpu_tax_registry": Layout(
        "nsrsbh", person_ids="fddbr_sfzh", uscc="nsrsbh", mandatory=("nsrmc", "djzt")
    ),
    "qingpu_fire_inspections": Layout(
        "inspectionId",
        uscc="unitUscc",
        stages=("inspectionDate", "rectifyDeadline"),
        mandatory=("unitUscc", "inspectionDate"),
    ),
    "qingpu_fire_alarms": Layout(
        "alarmId",
        "qingpu_fire_alarms",
        "alarmType",
        None,
        "unitUscc",
        ("raisedAt", "confirmedAt", "handledAt"),
        ("alarmId", "deviceId", "unitUscc", "alarmType", "raisedAt"),
    ),
    "qingpu_grid_events": Layout(
        "event_id",
        "qingpu_grid_events",
        "event_type",
        mandatory=("event_id", "stage_time", "event_type", "town"),
    ),
    "jiashan_grid_events": Layout(
        "事件编号",
        "jiashan_grid_events",
        "事件类型",
        stages=("上报时间", "会商时间", "处置时间", "反馈时间", "长效跟踪时间"),
        mandatory=("事件编号", "事件类型", "所属镇街"),
    ),
    "pinghu_jinshan_joint_operations": Layout(
        "op_id", "pinghu_jinshan_joint_operations", "mechanism", mandatory=("op_id", "mechanism", "op_date")
    ),
}
QINGPU_STAGES = ("发现", "派单", "核查", "处置", "结案", "反馈")


def mapped_codes() -> dict[str, set[str]]:
    """The source codes each feed's connector spec maps, by feed."""
    specs = load_specs(PROJECT_ROOT / "connectors")
    return {feed: set(spec.code_mapping) for feed, spec in specs.items() if spec.code_mapping}


def ledger(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "sim" / "defects.jsonl").read_text("utf-8").splitlines()]


def _blank(value):
    return None if value in ("", None) else value


# --- text CSV ------------------------------------------------------------------------------------------


def read_csv(path: Path, rel: str, encoding: str, other: str, id_col: str, bom: bool = False) -> list[Record]:
    """Line by line: a line that is not valid in the file's encoding is read in the `other` one."""
    data = path.read_bytes()
    if bom:
        assert data.startswith(b"\xef\xbb\xbf"), f"{rel}: no byte-order mark"
        data = data[3:]
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(newline)
    last_complete = lines[-1] == b""
    lines = lines[:-1] if last_complete else lines
    header = next(csv.reader([lines[0].decode(encoding)]))
    out = []
    for i, raw in enumerate(lines[1:], start=1):
        used = encoding
        try:
            text = raw.decode(encoding)
            # a UTF-8 line inside a GB18030 file can also decode as (garbled) GB18030
            if encoding != "utf-8" and text.encode(encoding) == raw and _is_utf8_cjk(raw):
                used, text = "utf-8", raw.decode("utf-8")
        except UnicodeDecodeError:
            used, text = other, raw.decode(other)
        values = next(csv.reader([text]))
        complete = len(values) == len(header) and (i < len(lines) - 1 or last_complete)
        fields = dict(zip(header, [_blank(v) for v in values], strict=False))
        out.append(Record(fields.get(id_col), fields, rel, i, raw, used, complete))
    return out


def _is_utf8_cjk(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def read_jsonl(path: Path, rel: str, id_col: str) -> list[Record]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    last_complete = lines[-1] == b""
    lines = lines[:-1] if last_complete else lines
    out = []
    for i, raw in enumerate(lines, start=1):
        try:
            obj = json.loads(raw)
            complete = True
        except json.JSONDecodeError:
            obj, complete = {id_col: json.loads(raw[raw.index(b":") + 1 : raw.index(b",")])}, False
        fields = {
            k: (_blank(v) if not isinstance(v, list) else (";".join(v) or None)) for k, v in obj.items()
        }
        out.append(Record(fields.get(id_col), fields, rel, i, raw, "utf-8", complete))
    return out


def read_xlsx(path: Path, rel: str, id_col: str) -> list[Record]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = list(wb["网格事件"].iter_rows(values_only=True))
    header = list(rows[0])
    out = [
        Record(r[0], dict(zip(header, [_blank(v) for v in r], strict=True)), rel, i)
        for i, r in enumerate(rows[1:], start=1)
    ]
    wb.close()
    return out


def read_sqlite(path: Path, rel: str) -> list[Record]:
    con = sqlite3.connect(path)
    cursor = con.execute("SELECT * FROM tax_registration ORDER BY rowid")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, [_blank(v) for v in row], strict=True)) for row in cursor.fetchall()]
    con.close()
    return [Record(r["nsrsbh"], r, rel, i) for i, r in enumerate(rows, 1)]


# --- one reader per feed -------------------------------------------------------------------------------


def feed_file(feed: str, day: date) -> str:
    ymd = day.strftime("%Y%m%d")
    return {
        "qingpu_110_incidents": f"sim/qingpu/110/110接处警_{ymd}.csv",
        "wujiang_incidents": f"landing/wujiang/incidents/dt={day.isoformat()}/incidents_{ymd}.jsonl",
        "jiashan_incidents": f"sim/jiashan/incidents/jiashan_jq_{ymd}.csv",
        "qingpu_tax_registry": "sim/qingpu/tax_registry.sqlite",
        "qingpu_fire_inspections": f"sim/qingpu/fire/inspections_{ymd}.jsonl",
        "qingpu_fire_alarms": f"sim/qingpu/fire/alarms_{ymd}.jsonl",
        "qingpu_grid_events": f"sim/qingpu/grid/grid_events_{ymd}.jsonl",
        "jiashan_grid_events": f"sim/jiashan/grid/网格事件_{ymd}.xlsx",
        "pinghu_jinshan_joint_operations": f"sim/pinghu_jinshan/joint_operations/joint_operations_{ymd}.csv",
    }[feed]


def read_feed(home: Path, feed: str, day: date) -> list[Record]:
    rel = feed_file(feed, day)
    path = home / rel
    lay = LAYOUTS[feed]
    if feed == "qingpu_110_incidents":
        return read_csv(path, rel, "gb18030", "utf-8", lay.id)
    if feed == "jiashan_incidents":
        return read_csv(path, rel, "utf-8", "gb18030", lay.id, bom=True)
    if feed == "pinghu_jinshan_joint_operations":
        return read_csv(path, rel, "utf-8", "utf-8", lay.id)
    if feed == "jiashan_grid_events":
        return read_xlsx(path, rel, lay.id)
    if feed == "qingpu_tax_registry":
        return read_sqlite(path, rel)
    return read_jsonl(path, rel, lay.id)


# --- values --------------------------------------------------------------------------------------------


def parse_time(value) -> datetime | None:
    """Any of the sources' timestamp styles as a naive Shanghai time (UTC 'Z' shifted by +8 h)."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value)
    if text.endswith("Z"):
        from datetime import timedelta

        return datetime.fromisoformat(text[:-1]) + timedelta(hours=8)
    if text.endswith("+08:00"):
        return datetime.fromisoformat(text[:-6])
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise ValueError(f"unparseable time {value!r}")


def in_delta(lat, lon) -> bool:
    lat, lon = float(lat), float(lon)
    return DELTA[0] <= lat <= DELTA[1] and DELTA[2] <= lon <= DELTA[3]


def split_ids(value) -> list[str]:
    return [v for v in str(value).split(";") if v] if value else []


# --- defects as a reader finds them ---------------------------------------------------------------------

ENCODING = {"qingpu_110_incidents": "gb18030", "jiashan_incidents": "utf-8"}


def record_defects(feed: str, r: Record, codes: dict[str, set[str]], previous_stage=None) -> list[tuple]:
    """(kind, column) of every defect visible in one record on its own."""
    lay = LAYOUTS[feed]
    f = r.fields
    if not r.complete:
        return [("truncated_file", None)]
    found = []
    if feed in ENCODING and r.encoding != ENCODING[feed]:
        found.append(("wrong_encoding", None))
    if lay.person_ids and any(not ric.is_valid(x) for x in split_ids(f.get(lay.person_ids))):
        found.append(("bad_id_checksum", lay.person_ids))
    if lay.uscc and f.get(lay.uscc) is not None and not uscc.is_valid(f[lay.uscc]):
        found.append(("bad_uscc_checksum", lay.uscc))
    if lay.code and f.get(lay.code) is not None and f[lay.code] not in codes[lay.mapping]:
        found.append(("unknown_category_code", lay.code))
    for col in lay.mandatory:
        if f.get(col) is None:
            found.append(("missing_mandatory", col))
    latest = None
    for col in lay.stages:
        t = parse_time(f.get(col))
        if t is None:
            continue
        if latest is not None and t < latest:
            found.append(("stage_order", col))
        latest = t if latest is None else max(latest, t)
    if previous_stage is not None and f.get("stage_time") and parse_time(f["stage_time"]) < previous_stage:
        found.append(("stage_order", "stage_time"))
    if lay.coords and f.get(lay.coords[0]) is not None:
        lat, lon = f[lay.coords[0]], f[lay.coords[1]]
        if not in_delta(lat, lon):
            found.append(
                ("coord_outside_delta", lay.coords[0] if not in_delta(lat, 120.0) else lay.coords[1])
            )
    return found


def qingpu_stage_times(sim) -> dict[tuple[str, int], object]:
    times = {}
    for day in sim.days:
        for r in read_feed(sim.home, "qingpu_grid_events", day):
            if r.complete and r.record_id and r.fields.get("stage_time"):
                times.setdefault(
                    (r.record_id, QINGPU_STAGES.index(r.fields["stage"])), parse_time(r.fields["stage_time"])
                )
    return times


def observed(sim, feed: str, codes, grid_times) -> Counter:
    """Every defect found in the feed's files, keyed like the ledger."""
    found = Counter()
    if feed == "qingpu_tax_registry":
        files = {None: read_feed(sim.home, feed, sim.start)}
    else:
        files = {day: read_feed(sim.home, feed, day) for day in sim.days}
    for day, records in files.items():
        seen = Counter()
        for r in records:
            key = r.record_id
            prev = None
            if feed == "qingpu_grid_events" and r.complete:
                key = (r.record_id, r.fields.get("stage"))
                k = QINGPU_STAGES.index(r.fields["stage"])
                prev = grid_times.get((r.record_id, k - 1)) if k else None
            when = day
            if feed == "qingpu_tax_registry":
                when = parse_time(r.fields["updated_at"]).date()
                key = (r.record_id, r.fields["updated_at"])  # a row per state: a USCC recurs as it changes
            for kind, col in record_defects(feed, r, codes, prev):
                found[(when.isoformat(), r.record_id, kind, col)] += 1
            if r.record_id is not None and r.complete:
                seen[key] += 1
                if seen[key] == 2:
                    found[(when.isoformat(), r.record_id, "duplicate_delivery", None)] += 1
    return found
