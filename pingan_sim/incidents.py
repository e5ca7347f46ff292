"""Incident calls (接处警) of Qingpu, Wujiang and Jiashan: one model, three native layouts.

Each jurisdiction's dispatch system records the same thing differently: Qingpu exports a GB18030 CSV with
Chinese headers and local seconds, Wujiang uploads JSON Lines in UTC with English fields, Jiashan a UTF-8
CSV with a byte-order mark and minute precision. Category codes differ per jurisdiction (seeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from pingan_sim import double_reports, places, rhythm
from pingan_sim.context import CROSSINGS, DEFECTS, RunContext
from pingan_sim.defects import DefectSpec, Frame, Injected, inject
from pingan_sim.identities import mobiles, resident_ids
from pingan_sim.writers import (
    TextFormat,
    encode_text,
    fmt_floats,
    fmt_times,
    json_lines,
    json_strings,
    objects,
    text_or_empty,
    write_file,
)

CALLS_PER_DAY = 1500
CATEGORY_SHARE = {
    "criminal": 0.07,
    "public_order": 0.20,
    "traffic": 0.26,
    "assistance": 0.24,
    "dispute": 0.13,
    "fire": 0.02,
    "other": 0.08,
}
CATEGORIES = tuple(CATEGORY_SHARE)
# How many people's ID numbers a call records (0..3), by category.
INVOLVED = {
    "criminal": (0.25, 0.45, 0.2, 0.1),
    "public_order": (0.3, 0.4, 0.2, 0.1),
    "traffic": (0.4, 0.3, 0.3, 0.0),
    "assistance": (0.75, 0.25, 0.0, 0.0),
    "dispute": (0.1, 0.5, 0.35, 0.05),
    "fire": (0.7, 0.3, 0.0, 0.0),
    "other": (0.9, 0.1, 0.0, 0.0),
}
DISPOSITIONS = {
    "criminal": ("已受理立案", "移交刑侦部门", "现场处置，嫌疑人已控制", "已登记，待进一步调查"),
    "public_order": ("现场调解处理", "批评教育后离开", "移交治安部门处理", "警告处罚"),
    "traffic": ("交警到场处理", "双方协商解决", "车辆已挪移", "移交交警大队"),
    "assistance": ("已帮助解决", "已联系家属", "已护送就医", "已转相关部门"),
    "dispute": ("现场调解成功", "引导至人民调解委员会", "双方协商解决", "移交司法所"),
    "fire": ("消防到场处置", "明火已扑灭", "虚惊，无火情"),
    "other": ("已解答咨询", "记录在案", "无效报警"),
}
# Calls still open when the nightly export runs (06:00 the next morning) have no closing time yet.
EXPORT_AFTER = np.timedelta64(30, "h")


@dataclass(frozen=True)
class IncidentSource:
    feed: str
    jurisdiction: str
    mapping: str
    spec: DefectSpec

    def incident_ids(self, day: date, n: int) -> list[str]:
        """Numbered in order of receipt within the day, each system in its own style."""
        ymd = day.strftime("%Y%m%d")
        prefix, width = {"310118": ("QP110", 6), "320509": ("WJ", 6), "330421": ("J330421", 5)}[
            self.jurisdiction
        ]
        return [f"{prefix}{ymd}{i:0{width}d}" for i in range(1, n + 1)]


_COMMON = dict(
    person_ids="ids",
    code="code",
    stages=("reported", "dispatched", "arrived", "closed"),
    coords=("lat", "lon"),
)
QINGPU = IncidentSource(
    "qingpu_110_incidents",
    "310118",
    "qingpu_110_incidents",
    DefectSpec(
        feed="qingpu_110_incidents",
        kinds=(
            "bad_id_checksum",
            "unknown_category_code",
            "stage_order",
            "missing_mandatory",
            "duplicate_delivery",
            "coord_outside_delta",
            "wrong_encoding",
        ),
        source={
            "id": "接警编号",
            "reported": "报警时间",
            "dispatched": "派警时间",
            "arrived": "到达时间",
            "closed": "结案时间",
            "code": "警情类别代码",
            "town": "所属镇街",
            "lat": "纬度",
            "lon": "经度",
            "ids": "涉事人身份证号",
        },
        label="label",
        unknown_codes=(("070100", "电信网络诈骗(新)"), ("080300", "无人机违规飞行")),
        mandatory=("id", "reported", "code", "town"),
        **_COMMON,
    ),
)
WUJIANG = IncidentSource(
    "wujiang_incidents",
    "320509",
    "wujiang_incidents",
    DefectSpec(
        feed="wujiang_incidents",
        kinds=(
            "bad_id_checksum",
            "unknown_category_code",
            "stage_order",
            "missing_mandatory",
            "duplicate_delivery",
            "coord_outside_delta",
        ),
        source={
            "id": "incident_no",
            "reported": "reported_at",
            "dispatched": "dispatched_at",
            "arrived": "arrived_at",
            "closed": "closed_at",
            "code": "category_code",
            "town": "town",
            "lat": "latitude",
            "lon": "longitude",
            "ids": "involved_ids",
        },
        unknown_codes=(("WJ-DZ-01", "电诈"), ("WJ-WR-01", "无人机")),
        mandatory=("id", "reported", "code", "town"),
        **_COMMON,
    ),
)
JIASHAN = IncidentSource(
    "jiashan_incidents",
    "330421",
    "jiashan_incidents",
    DefectSpec(
        feed="jiashan_incidents",
        kinds=(
            "bad_id_checksum",
            "unknown_category_code",
            "stage_order",
            "missing_mandatory",
            "duplicate_delivery",
            "coord_outside_delta",
            "wrong_encoding",
        ),
        source={
            "id": "警情编号",
            "reported": "接警时间",
            "dispatched": "派警时间",
            "arrived": "到场时间",
            "closed": "办结时间",
            "code": "警情类型代码",
            "town": "镇街",
            "lat": "纬度",
            "lon": "经度",
            "ids": "当事人证件号码",
        },
        unknown_codes=(("JQ7001", "电信诈骗"), ("JQ8001", "网络谣言")),
        mandatory=("id", "reported", "code", "town"),
        **_COMMON,
    ),
)
SOURCES = (QINGPU, WUJIANG, JIASHAN)


def generate(ctx: RunContext, src: IncidentSource, day: date) -> Frame:
    """One day of calls, sorted by report time, as typed columns."""
    rng = ctx.rng(src.feed, day)
    towns = ctx.ref.towns[src.jurisdiction]
    codes = ctx.ref.codes(src.mapping)
    lam = rhythm.expected_per_day(
        CALLS_PER_DAY, ctx.scale, day, rhythm.WEEKDAY_110, trend=True, seasonal=True
    )
    n = rhythm.count_for_day(rng, lam)

    reported = rhythm.times_in_day(rng, day, n, rhythm.HOURLY_110)
    code_idx = rng.choice(len(codes), size=n, p=ctx.ref.code_weights(src.mapping, CATEGORY_SHARE))
    category = np.array([CATEGORIES.index(c.category) for c in codes])[code_idx]

    dispatched = reported + rhythm.lognormal_seconds(rng, n, 90, 0.6, 20, 1800)
    arrived = dispatched + rhythm.lognormal_seconds(rng, n, 310, 0.3, 60, 3600)  # mostly 3-8 minutes
    # advice calls are settled on the phone: no one is sent to the scene
    no_visit = rng.random(n) < np.where(category == CATEGORIES.index("other"), 0.5, 0.02)
    arrived[no_visit] = rhythm.NAT
    handled_from = np.where(no_visit, dispatched, arrived)
    closed = handled_from + rhythm.lognormal_seconds(rng, n, 2700, 0.9, 300, 3 * 86400)
    closed[closed > rhythm.day_start(day) + EXPORT_AFTER] = rhythm.NAT

    town_idx = places.pick_towns(rng, towns, n)
    lat, lon = places.coords(rng, towns, town_idx)
    dispositions = np.empty(n, dtype=object)
    involved = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    pick = rng.integers(0, 1 << 30, n)
    for c, name in enumerate(CATEGORIES):
        mask = category == c
        options = DISPOSITIONS[name]
        dispositions[mask] = np.array(options, dtype=object)[pick[mask] % len(options)]
        involved[mask] = (u[mask, None] > np.cumsum(INVOLVED[name])[None, :-1]).sum(axis=1)
    ids = resident_ids(rng, int(involved.sum()), day.year, src.jurisdiction, minors=0.08).tolist()
    bounds = np.concatenate([[0], np.cumsum(involved)]).tolist()
    return {
        "id": np.array(src.incident_ids(day, n), dtype=object),
        "reported": reported,
        "dispatched": dispatched,
        "arrived": arrived,
        "closed": closed,
        "code": np.array([c.code for c in codes], dtype=object)[code_idx],
        "label": np.array([c.label for c in codes], dtype=object)[code_idx],
        "town": np.array(towns.names, dtype=object)[town_idx],
        "grid": places.pick_grids(rng, towns, town_idx).astype(object),
        "lat": lat,
        "lon": lon,
        "address": np.array(places.addresses(rng, towns, town_idx), dtype=object),
        "unit": places.police_units(towns).astype(object)[town_idx],
        "result": dispositions,
        "phone": mobiles(rng, n).astype(object),
        "ids": objects(tuple(ids[bounds[i] : bounds[i + 1]]) for i in range(n)),
    }


# --- native layouts ----------------------------------------------------------------------------------

QINGPU_HEADER = (
    "接警编号",
    "报警时间",
    "派警时间",
    "到达时间",
    "结案时间",
    "警情类别代码",
    "警情类别",
    "所属镇街",
    "网格编号",
    "经度",
    "纬度",
    "发生地址",
    "处警单位",
    "处理结果",
    "报警人电话",
    "涉事人身份证号",
)
JIASHAN_HEADER = (
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
)
WUJIANG_FIELDS = [
    "incident_no",
    "category_code",
    "reported_at",
    "dispatched_at",
    "arrived_at",
    "closed_at",
    "town",
    "grid",
    "latitude",
    "longitude",
    "address",
    "unit",
    "result",
    "caller_mobile",
    "involved_ids",
]

# A Windows export tool in China: GB18030 with CRLF; a UTF-8 line slips in when a record was keyed in
# through the newer web front end.
QINGPU_FORMAT = TextFormat("gb18030", "\r\n", wrong_encoding="utf-8")
JIASHAN_FORMAT = TextFormat("utf-8", "\r\n", bom=True, wrong_encoding="gb18030")
WUJIANG_FORMAT = TextFormat("utf-8", "\n")


def _joined_ids(values) -> list[str]:
    return ["" if v is None else ";".join(v) for v in values]


def qingpu_lines(f: Frame) -> list[str]:
    cols = [
        text_or_empty(f["id"]),
        *(fmt_times(f[c]) for c in ("reported", "dispatched", "arrived", "closed")),
        text_or_empty(f["code"]),
        text_or_empty(f["label"]),
        text_or_empty(f["town"]),
        text_or_empty(f["grid"]),
        fmt_floats(f["lon"]),
        fmt_floats(f["lat"]),
        text_or_empty(f["address"]),
        text_or_empty(f["unit"]),
        text_or_empty(f["result"]),
        text_or_empty(f["phone"]),
        _joined_ids(f["ids"]),
    ]
    return [",".join(row) for row in zip(*cols, strict=True)]


def jiashan_lines(f: Frame) -> list[str]:
    times = (fmt_times(f[c], "minutes") for c in ("reported", "dispatched", "arrived", "closed"))
    cols = [
        text_or_empty(f["id"]),
        *times,
        text_or_empty(f["code"]),
        text_or_empty(f["town"]),
        text_or_empty(f["grid"]),
        fmt_floats(f["lon"]),
        fmt_floats(f["lat"]),
        text_or_empty(f["address"]),
        text_or_empty(f["unit"]),
        text_or_empty(f["result"]),
        text_or_empty(f["phone"]),
        _joined_ids(f["ids"]),
    ]
    return [",".join(row) for row in zip(*cols, strict=True)]


def wujiang_lines(f: Frame) -> list[str]:
    # Wujiang sends UTC with a Z
    times = (
        json_strings(fmt_times(f[c], "utc", missing=None), safe=True)
        for c in ("reported", "dispatched", "arrived", "closed")
    )
    ids = ["[]" if v is None else "[" + ",".join(f'"{x}"' for x in v) + "]" for v in f["ids"]]
    cols = [
        json_strings(f["id"]),
        json_strings(f["code"]),
        *times,
        json_strings(f["town"]),
        json_strings(f["grid"]),
        fmt_floats(f["lat"], missing="null"),
        fmt_floats(f["lon"], missing="null"),
        json_strings(f["address"]),
        json_strings(f["unit"]),
        json_strings(f["result"]),
        json_strings(f["phone"]),
        ids,
    ]
    return json_lines(WUJIANG_FIELDS, cols)


def _file(src: IncidentSource, day: date) -> str:
    ymd = day.strftime("%Y%m%d")
    if src is QINGPU:
        return f"sim/qingpu/110/110接处警_{ymd}.csv"
    if src is JIASHAN:
        return f"sim/jiashan/incidents/jiashan_jq_{ymd}.csv"
    return f"wujiang/incidents/dt={day.isoformat()}/incidents_{ymd}.jsonl"  # a key in the landing store


def border_originals(ctx: RunContext, day: date) -> tuple[Frame, list[int], list[double_reports.Original]]:
    """Qingpu's day, and the calls of it the partner across the border also takes (never the row a
    truncated file loses). Derived from Qingpu's day alone, so every feed's day stands on its own."""
    frame = generate(ctx, QINGPU, day)
    n = len(frame["id"])
    category = {c.code: c.category for c in ctx.ref.codes(QINGPU.mapping)}
    categories = np.array([category[c] for c in frame["code"].tolist()], dtype=object)
    avoid = {n - 1} if ctx.is_truncated(QINGPU.feed, day) else set()
    rng = ctx.rng(QINGPU.feed, day, CROSSINGS)
    rows, originals = double_reports.pick_originals(rng, ctx.ref, frame, categories, avoid=avoid)
    return frame, rows, originals


def with_double_reports(
    ctx: RunContext, src: IncidentSource, day: date, frame: Frame, originals: list[double_reports.Original]
) -> tuple[Frame, list[tuple[int, double_reports.Original]]]:
    """The partner's day with its copies of Qingpu's calls merged in report order and numbered as its
    system numbers calls; returns the frame and (row, original) per copy."""
    mine = [o for o in originals if o.partner == src.jurisdiction]
    if not mine:
        return frame, []
    export_at = rhythm.day_start(day) + EXPORT_AFTER
    extra = double_reports.copies(
        ctx.rng(src.feed, day, CROSSINGS), ctx.ref, src.mapping, src.jurisdiction, mine, export_at
    )
    n = len(frame["id"])
    merged = {k: np.concatenate([v, extra[k]]) if k in extra else v for k, v in frame.items()}
    order = np.argsort(merged["reported"], kind="stable")
    merged = {k: v[order] for k, v in merged.items() if k != "id"}
    merged["id"] = np.array(src.incident_ids(day, len(order)), dtype=object)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return merged, [(int(position[n + k]), o) for k, o in enumerate(mine)]


def day_bytes(ctx: RunContext, src: IncidentSource, day: date) -> tuple[str, bytes, int, Injected]:
    """Generate, damage and serialise one day: (file, bytes, clean row count, what was injected).
    Cross-border double reports are planted clean and listed in ctx.double_reports."""
    if src is QINGPU:
        frame, planted, _ = border_originals(ctx, day)
        copies = []
    else:
        frame, copies = with_double_reports(
            ctx, src, day, generate(ctx, src, day), border_originals(ctx, day)[2]
        )
        planted = [row for row, _ in copies]
    n = len(frame["id"])
    file = _file(src, day)
    truncate = ctx.is_truncated(src.feed, day) and n > 0
    exclude = ((n - 1,) if truncate else ()) + tuple(planted)
    injected = inject(
        frame, src.spec, ctx.rng(src.feed, day, DEFECTS), ctx.defect_rate, day=day, file=file, exclude=exclude
    )
    ctx.double_reports += [
        double_reports.entry(day, o, QINGPU.feed, src.feed, str(frame["id"][row]))
        for row, o in copies
        if not (truncate and row == n - 1)  # the cut-off line never arrives: no pair
    ]
    if src is QINGPU:
        lines, fmt, header = qingpu_lines(frame), QINGPU_FORMAT, ",".join(QINGPU_HEADER)
    elif src is JIASHAN:
        lines, fmt, header = jiashan_lines(frame), JIASHAN_FORMAT, ",".join(JIASHAN_HEADER)
    else:
        lines, fmt, header = wujiang_lines(frame), WUJIANG_FORMAT, None
    data = encode_text(
        lines,
        fmt,
        header=header,
        duplicates=injected.duplicates,
        misencoded=injected.misencoded,
        truncate=truncate,
    )
    if truncate:
        ctx.record_truncation(src.feed, day, file, frame["id"][n - 1])
    return file, data, n, injected


def run(ctx: RunContext) -> None:
    for src in SOURCES:
        for day in ctx.days():
            file, data, n, injected = day_bytes(ctx, src, day)
            if src is WUJIANG:
                ctx.landing.put_bytes(file, data, content_type="application/x-ndjson")
            else:
                write_file(ctx.home / file, data)
            ctx.record(src.feed, day, n, injected)
            if day.day == 1 or day == ctx.end:
                ctx.say(f"{src.feed}: {day.isoformat()}")
