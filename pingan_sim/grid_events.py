"""Grid events (网格事件, 矛盾纠纷) moving through the closed loop, in Qingpu's and Jiashan's formats.

An event is generated whole on the day it is discovered (with the random stream of that day): its type,
place, parties and the time of every later stage, hours to weeks apart. Each day's file then holds what
happened that day, so an event's later stages appear in later files, and the first files of a run carry
later stages of events discovered before it, as a system already running does. A few events stall and
never close (the overdue items of the closure KPI).

Qingpu writes one JSON line per stage change (发现→派单→核查→处置→结案→反馈). Jiashan exports a workbook
per day with one row per event updated that day and a column per stage reached so far
(上报→会商→处置→反馈→长效跟踪; long-term follow-up only for some events).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from pingan_sim import places, rhythm
from pingan_sim.context import DEFECTS, RunContext
from pingan_sim.defects import DefectSpec, Frame, inject
from pingan_sim.identities import person_names
from pingan_sim.writers import (
    TextFormat,
    encode_text,
    fmt_times,
    json_lines,
    json_strings,
    write_file,
    xlsx_bytes,
)

LOOKBACK_DAYS = 45  # longer than any lifecycle: stages past this are never reached
CATEGORY_SHARE = {
    "dispute": 0.35,
    "safety_hazard": 0.25,
    "environment": 0.20,
    "public_order": 0.12,
    "other": 0.08,
}
SLOW_CATEGORIES = ("safety_hazard", "environment")  # rectification takes longer than mediation
PARTIES = {"dispute": (0.0, 0.0, 0.6, 0.4), "public_order": (0.2, 0.6, 0.2, 0.0)}  # P(0..3 parties)
OTHER_PARTIES = (0.6, 0.4, 0.0, 0.0)
STALL_RATE = 0.004


@dataclass(frozen=True)
class GridSource:
    feed: str
    jurisdiction: str
    mapping: str
    id_prefix: str
    per_day: float
    stages: tuple[str, ...]
    # (median seconds, sigma, min, max) of the gap before each stage after the first
    gaps: tuple[tuple[float, float, float, float], ...]
    handle_stage: int  # the stage where hazards are rectified (twice as slow as settling a dispute)
    optional_last: float  # share of events that reach the last stage (1.0 = all)
    records_per_event: float  # lines or rows an event leaves across files, to aim defects at `rate` of them
    stage_per_record: bool  # a record carries one stage time (Qingpu lines), not all so far (Jiashan rows)
    spec: DefectSpec


_DAY = 86400
QINGPU = GridSource(
    feed="qingpu_grid_events",
    jurisdiction="310118",
    mapping="qingpu_grid_events",
    id_prefix="QPG",
    per_day=300,
    stages=("发现", "派单", "核查", "处置", "结案", "反馈"),
    gaps=(
        (1200, 0.7, 60, 6 * 3600),
        (7200, 0.8, 600, 2 * _DAY),
        (36000, 1.0, 1800, 7 * _DAY),
        (21600, 0.9, 600, 5 * _DAY),
        (72000, 0.8, 3600, 7 * _DAY),
    ),
    handle_stage=3,
    optional_last=1.0,
    records_per_event=6.0,
    stage_per_record=True,
    spec=DefectSpec(
        feed="qingpu_grid_events",
        kinds=("unknown_category_code", "stage_order", "missing_mandatory", "duplicate_delivery"),
        source={"id": "event_id", "stage_time": "stage_time", "type": "event_type", "town": "town"},
        code="type",
        unknown_codes=(("YQ01", "疫情防控"), ("ZZ09", "其他(新增)")),
        stages=("prev_time", "stage_time"),
        mandatory=("id", "stage_time", "type", "town"),
    ),
)
JIASHAN = GridSource(
    feed="jiashan_grid_events",
    jurisdiction="330421",
    mapping="jiashan_grid_events",
    id_prefix="JSWG",
    per_day=250,
    stages=("上报", "会商", "处置", "反馈", "长效跟踪"),
    gaps=(
        (10800, 0.8, 600, 2 * _DAY),
        (43200, 1.0, 1800, 7 * _DAY),
        (36000, 0.9, 1800, 5 * _DAY),
        (7 * _DAY, 0.6, 2 * _DAY, 20 * _DAY),
    ),
    handle_stage=2,
    optional_last=0.35,
    records_per_event=3.0,
    stage_per_record=False,
    spec=DefectSpec(
        feed="jiashan_grid_events",
        kinds=("unknown_category_code", "stage_order", "missing_mandatory", "duplicate_delivery"),
        source={
            "id": "事件编号",
            "type": "事件类型",
            "town": "所属镇街",
            "s0": "上报时间",
            "s1": "会商时间",
            "s2": "处置时间",
            "s3": "反馈时间",
            "s4": "长效跟踪时间",
        },
        code="type",
        unknown_codes=(("SJ-501", "疫情防控"), ("SJ-601", "其他(新增)")),
        stages=("s0", "s1", "s2", "s3", "s4"),
        mandatory=("id", "type", "town"),
    ),
)
SOURCES = (QINGPU, JIASHAN)


def _units(src: GridSource, towns, town_idx: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Who handles an event after dispatch, by category."""
    police = places.POLICE[src.jurisdiction]
    out = []
    for t, c in zip(town_idx.tolist(), category.tolist(), strict=True):
        town = towns.names[t]
        out.append(
            {
                "dispute": f"{town}人民调解委员会",
                "safety_hazard": f"{town}安全生产办公室",
                "environment": f"{town}城市管理办公室",
                "public_order": f"{police}{places.town_stem(town)}派出所",
            }.get(c, f"{town}网格化综合管理中心")
        )
    return np.array(out, dtype=object)


def discovered_on(ctx: RunContext, src: GridSource, day: date) -> Frame:
    """Every event discovered on `day`, with all its stage times (NaT for stages never reached)."""
    rng = ctx.rng(src.feed, day)
    towns = ctx.ref.towns[src.jurisdiction]
    codes = ctx.ref.codes(src.mapping)
    n = rhythm.count_for_day(rng, rhythm.expected_per_day(src.per_day, ctx.scale, day, rhythm.WEEKDAY_OFFICE))
    code_idx = rng.choice(len(codes), size=n, p=ctx.ref.code_weights(src.mapping, CATEGORY_SHARE))
    category = np.array([c.category for c in codes], dtype=object)[code_idx]
    slow = np.isin(category, SLOW_CATEGORIES)

    times = np.empty((len(src.stages), n), dtype="datetime64[s]")
    times[0] = rhythm.times_in_day(rng, day, n, rhythm.HOURLY_OFFICE)
    for k, (median, sigma, lo, hi) in enumerate(src.gaps, start=1):
        gap = rhythm.lognormal_seconds(rng, n, median, sigma, lo, hi)
        if k == src.handle_stage:
            gap[slow] *= 2
        times[k] = times[k - 1] + gap
    reaches_last = rng.random(n) < src.optional_last
    times[-1][~reaches_last] = rhythm.NAT
    stalled = rng.random(n) < STALL_RATE  # stuck after some stage: overdue, never closed
    stall_at = rng.integers(1, len(src.stages), n)
    for k in range(1, len(src.stages)):
        times[k][stalled & (stall_at <= k)] = rhythm.NAT

    town_idx = places.pick_towns(rng, towns, n, border_boost=1.5)
    cross = towns.is_border[town_idx] & (rng.random(n) < 0.3)
    n_parties = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    for name in CATEGORY_SHARE:
        mask = category == name
        n_parties[mask] = (u[mask, None] > np.cumsum(PARTIES.get(name, OTHER_PARTIES))[None, :-1]).sum(axis=1)
    names = person_names(rng, int(n_parties.sum()))
    bounds = np.concatenate([[0], np.cumsum(n_parties)]).tolist()
    ymd = day.strftime("%Y%m%d")

    # defects are chosen per event, on one of the records it leaves (a line or a daily row)
    drng = ctx.rng(src.feed, day, DEFECTS)
    defective = drng.random(n) < min(1.0, ctx.defect_rate * src.records_per_event)
    kind = np.array(src.spec.kinds, dtype=object)[drng.integers(0, len(src.spec.kinds), n)]
    reached = (~np.isnat(times)).sum(axis=0)
    target = (drng.random(n) * np.maximum(reached, 1)).astype(np.int64)
    # a stage put before its predecessor must be visible in one file: where a record carries one stage,
    # pick a stage whose predecessor happened the same day (a Jiashan row shows every stage so far)
    days = times.astype("datetime64[D]")
    same_day = ~np.isnat(times[1:]) & ((days[1:] == days[:-1]) | (not src.stage_per_record))
    u = drng.random(n)
    order_target = np.array(
        [
            1 + np.flatnonzero(col)[int(x * col.sum())] if col.any() else -1
            for col, x in zip(same_day.T, u.tolist(), strict=True)
        ],
        dtype=np.int64,
    )
    is_order = kind == "stage_order"
    target[is_order] = order_target[is_order]
    kind[~defective | (target >= reached) | (target < 0)] = None
    return {
        "id": np.array([f"{src.id_prefix}{ymd}{i:05d}" for i in range(1, n + 1)], dtype=object),
        "type": np.array([c.code for c in codes], dtype=object)[code_idx],
        "grid": places.pick_grids(rng, towns, town_idx).astype(object),
        "town": np.array(towns.names, dtype=object)[town_idx],
        "cross": cross,
        "parties": np.array([";".join(names[bounds[i] : bounds[i + 1]]) for i in range(n)], dtype=object),
        "address": np.array(places.addresses(rng, towns, town_idx), dtype=object),
        "unit": _units(src, towns, town_idx, category),
        "centre": np.array([f"{towns.names[t]}网格化综合管理中心" for t in town_idx.tolist()], dtype=object),
        "times": times.T.copy(),  # (n, stages)
        "defect": kind,
        "defect_stage": target,
    }


class Window:
    """Events discovered in the last LOOKBACK_DAYS, generated once each as the run moves forward."""

    def __init__(self, ctx: RunContext, src: GridSource):
        self.ctx, self.src = ctx, src
        self.days: dict[date, Frame] = {}

    def frames(self, day: date) -> list[Frame]:
        first = day - timedelta(days=LOOKBACK_DAYS)
        for d in [d for d in self.days if d < first]:
            del self.days[d]
        for i in range(LOOKBACK_DAYS + 1):
            d = first + timedelta(days=i)
            if d not in self.days:
                self.days[d] = discovered_on(self.ctx, self.src, d)
        return [self.days[first + timedelta(days=i)] for i in range(LOOKBACK_DAYS + 1)]


def _on_day(times: np.ndarray, day: date) -> np.ndarray:
    return times.astype("datetime64[D]") == np.datetime64(day)


# --- Qingpu: one JSON line per stage change -------------------------------------------------------------

QINGPU_FIELDS = [
    "event_id",
    "stage",
    "stage_time",
    "event_type",
    "grid_code",
    "town",
    "cross_border",
    "parties",
    "address",
    "handler",
]
JSONL = TextFormat("utf-8", "\n")


def qingpu_day(frames: list[Frame], day: date) -> tuple[Frame, dict[int, str]]:
    """The stage changes of `day` as lines, sorted by time, and the defects aimed at them."""
    parts, forced_parts = [], []
    for f in frames:
        hits = _on_day(f["times"], day)
        ev, stage = np.nonzero(hits)
        prev = np.where(stage > 0, f["times"][ev, np.maximum(stage - 1, 0)], rhythm.NAT)
        parts.append(
            {
                "id": f["id"][ev],
                "stage": np.array(QINGPU.stages, dtype=object)[stage],
                "stage_time": f["times"][ev, stage],
                "prev_time": prev,
                "type": f["type"][ev],
                "grid": f["grid"][ev],
                "town": f["town"][ev],
                "cross": f["cross"][ev],
                "parties": f["parties"][ev],
                "address": f["address"][ev],
                "handler": np.where(stage < 2, f["centre"][ev], f["unit"][ev]),
            }
        )
        forced_parts.append(np.where(f["defect_stage"][ev] == stage, f["defect"][ev], None))
    lines = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    forced_kind = np.concatenate(forced_parts)
    order = np.lexsort((lines["id"].astype(str), lines["stage_time"]))
    lines = {k: v[order] for k, v in lines.items()}
    forced_kind = forced_kind[order]
    return lines, {int(i): forced_kind[i] for i in np.flatnonzero(forced_kind != None)}  # noqa: E711


def qingpu_lines(f: Frame) -> list[str]:
    cols = [
        json_strings(f["id"]),
        json_strings(f["stage"]),
        json_strings(fmt_times(f["stage_time"], missing=None), safe=True),
        json_strings(f["type"]),
        json_strings(f["grid"]),
        json_strings(f["town"]),
        ["true" if c else "false" for c in f["cross"].tolist()],
        json_strings(f["parties"]),
        json_strings(f["address"]),
        json_strings(f["handler"]),
    ]
    return json_lines(QINGPU_FIELDS, cols)


# --- Jiashan: a workbook per day, one row per event updated that day -----------------------------------

JIASHAN_HEADER = [
    "事件编号",
    "事件类型",
    "网格编号",
    "所属镇街",
    "是否跨界",
    "当事人",
    "事件地址",
    "处置单位",
    "上报时间",
    "会商时间",
    "处置时间",
    "反馈时间",
    "长效跟踪时间",
]
SHEET = "网格事件"


def jiashan_day(frames: list[Frame], day: date) -> tuple[Frame, dict[int, str]]:
    parts, forced_parts = [], []
    day_end = np.datetime64(day + timedelta(days=1), "s")
    for f in frames:
        hits = _on_day(f["times"], day)
        ev = np.flatnonzero(hits.any(axis=1))
        so_far = f["times"][ev].copy()
        so_far[so_far >= day_end] = rhythm.NAT
        part = {k: f[k][ev] for k in ("id", "type", "grid", "town", "parties", "address", "unit")}
        part["cross"] = np.where(f["cross"][ev], "是", "否").astype(object)
        for k in range(len(JIASHAN.stages)):
            part[f"s{k}"] = so_far[:, k]
        parts.append(part)
        aimed = hits[ev, np.clip(f["defect_stage"][ev], 0, len(JIASHAN.stages) - 1)]
        forced_parts.append(np.where(aimed, f["defect"][ev], None))
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    forced_kind = np.concatenate(forced_parts)
    order = np.argsort(rows["id"].astype(str), kind="stable")
    rows = {k: v[order] for k, v in rows.items()}
    forced_kind = forced_kind[order]
    return rows, {int(i): forced_kind[i] for i in np.flatnonzero(forced_kind != None)}  # noqa: E711


def jiashan_workbook(f: Frame, duplicates: set[int]) -> bytes:
    stage_cols = [f[f"s{k}"].astype(object) for k in range(len(JIASHAN.stages))]  # NaT -> None, else datetime
    cols = [f[k].tolist() for k in ("id", "type", "grid", "town", "cross", "parties", "address", "unit")]
    rows = []
    for i, row in enumerate(zip(*cols, *[c.tolist() for c in stage_cols], strict=True)):
        row = [v if not isinstance(v, datetime) else v.replace(microsecond=0) for v in row]
        rows.append(row)
        if i in duplicates:
            rows.append(row)
    return xlsx_bytes(SHEET, JIASHAN_HEADER, rows)


# --- the run -------------------------------------------------------------------------------------------


def _file(src: GridSource, day: date) -> str:
    ymd = day.strftime("%Y%m%d")
    return (
        f"sim/qingpu/grid/grid_events_{ymd}.jsonl"
        if src is QINGPU
        else f"sim/jiashan/grid/网格事件_{ymd}.xlsx"
    )


def run(ctx: RunContext) -> None:
    for src in SOURCES:
        window = Window(ctx, src)
        for day in ctx.days():
            frames = window.frames(day)
            file = _file(src, day)
            if src is QINGPU:
                frame, forced = qingpu_day(frames, day)
            else:
                frame, forced = jiashan_day(frames, day)
            n = len(frame["id"])
            truncate = ctx.is_truncated(src.feed, day) and n > 0
            injected = inject(
                frame,
                src.spec,
                ctx.rng(src.feed, day, DEFECTS),
                ctx.defect_rate,
                day=day,
                file=file,
                exclude=(n - 1,) if truncate else (),
                forced=forced,
            )
            if src is QINGPU:
                data = encode_text(
                    qingpu_lines(frame), JSONL, duplicates=injected.duplicates, truncate=truncate
                )
                if truncate:
                    ctx.record_truncation(src.feed, day, file, frame["id"][n - 1])
            else:
                data = jiashan_workbook(frame, injected.duplicates)
            write_file(ctx.home / file, data)
            ctx.record(src.feed, day, n, injected)
            if day.day == 1 or day == ctx.end:
                ctx.say(f"{src.feed}: {day.isoformat()}")
