"""Pinghu–Jinshan joint operations (五联: 联查 联管 联调 联防 联宣) from the pair's shared platform.

Each record names both sides: the towns, the units each sent and the records it links to in each
side's own systems (`330482:...`, `310116:...`). Most activity sits on the 58 km border, above all around
广陈镇 and 廊下镇 (山塘, one street shared by two towns). The platform publishes one CSV per day, which
`servers.py` serves at /api/v1/joint-operations.csv?date=D.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import numpy as np

from pingan_sim import places, rhythm
from pingan_sim.context import DEFECTS, RunContext
from pingan_sim.defects import DefectSpec, Frame, inject
from pingan_sim.writers import fmt_times, write_file

FEED = "pinghu_jinshan_joint_operations"
PINGHU, JINSHAN = "330482", "310116"
OPS_PER_DAY = 12
MECHANISM_SHARE = {
    "joint_patrol": 0.35,
    "joint_mediation": 0.25,
    "joint_check": 0.20,
    "joint_management": 0.12,
    "joint_publicity": 0.08,
}
SPOTS = ("省界界河", "毗邻村道", "农贸市场", "工业园区", "界碑处", "渡口", "跨界桥梁")
HEADER = [
    "op_id",
    "mechanism",
    "op_date",
    "pinghu_town",
    "jinshan_town",
    "location",
    "pinghu_units",
    "jinshan_units",
    "outcome",
    "linked_ids",
]

SPEC = DefectSpec(
    feed=FEED,
    kinds=("unknown_category_code", "missing_mandatory", "duplicate_delivery"),
    source={"id": "op_id", "mechanism": "mechanism", "op_date": "op_date"},
    code="mechanism",
    unknown_codes=(("联勤", "联合勤务"), ("联治", "联合治理")),
    mandatory=("id", "mechanism", "op_date"),
)


def request_for(day: date) -> str:
    return f"/api/v1/joint-operations.csv?date={day.isoformat()}"


def file_for(day: date) -> str:
    return f"sim/pinghu_jinshan/joint_operations/joint_operations_{day.strftime('%Y%m%d')}.csv"


def _units(jurisdiction: str, town: str, mechanism: str, extra: bool) -> str:
    stem = places.town_stem(town)
    main = {"联调": f"{town}人民调解委员会", "联宣": f"{town}司法所", "联管": f"{town}综治中心"}.get(
        mechanism, f"{places.POLICE[jurisdiction]}{stem}派出所"
    )
    return f"{main};{town}综治中心" if extra and not main.endswith("综治中心") else main


def _outcome(mechanism: str, a: int, b: int) -> str:
    if mechanism == "联查":
        return f"联合检查场所{a % 12 + 1}处，查获违法人员{b % 4}名"
    if mechanism == "联管":
        return f"核对更新流动人口等基础数据{a % 400 + 20}条"
    if mechanism == "联调":
        return ("调解成功，双方签订协议", "调解中，约定再次会商", "调解不成，引导司法途径")[b % 3]
    if mechanism == "联防":
        return f"联合巡逻{a % 6 + 2}小时，出动警力{b % 20 + 4}人次"
    return f"发放宣传资料{a % 500 + 50}份，受众约{b % 900 + 100}人"


def generate(ctx: RunContext, day: date) -> Frame:
    rng = ctx.rng(FEED, day)
    ph, js = ctx.ref.towns[PINGHU], ctx.ref.towns[JINSHAN]
    codes = ctx.ref.codes("pinghu_jinshan_joint_operations")
    n = rhythm.count_for_day(rng, rhythm.expected_per_day(OPS_PER_DAY, ctx.scale, day))
    mech = np.array([c.code for c in codes], dtype=object)[
        rng.choice(
            len(codes), size=n, p=ctx.ref.code_weights("pinghu_jinshan_joint_operations", MECHANISM_SHARE)
        )
    ]
    ph_town = np.array(ph.names, dtype=object)[places.pick_towns(rng, ph, n, border_boost=8)]
    js_town = np.array(js.names, dtype=object)[places.pick_towns(rng, js, n, border_boost=8)]
    spot = rng.integers(0, len(SPOTS), n).tolist()
    a, b = rng.integers(0, 1 << 20, n).tolist(), rng.integers(0, 1 << 20, n).tolist()
    extra = (rng.random(n) < 0.4).tolist()
    n_links = np.where(np.isin(mech, ["联查", "联调"]), rng.integers(1, 4, n), rng.integers(0, 2, n)).tolist()
    link_no = rng.integers(1, 2000, (n, 3)).tolist()
    ymd = day.strftime("%Y%m%d")
    location, ph_units, js_units, outcome, linked = [], [], [], [], []
    for i in range(n):
        m, p, j = mech[i], ph_town[i], js_town[i]
        shared = p == "广陈镇" and j == "廊下镇"  # 山塘: one street, two towns
        location.append(f"{p}—{j}交界{'山塘老街' if shared and spot[i] < 3 else SPOTS[spot[i]]}")
        ph_units.append(_units(PINGHU, p, m, extra[i]))
        js_units.append(_units(JINSHAN, j, m, not extra[i]))
        outcome.append(_outcome(m, a[i], b[i]))
        # alternate sides so any op with two or more links names records on both
        ids = [
            f"{PINGHU}:PH110{ymd}{link_no[i][k]:06d}"
            if k % 2 == 0
            else f"{JINSHAN}:JS110{ymd}{link_no[i][k]:06d}"
            for k in range(n_links[i])
        ]
        linked.append(";".join(ids))
    return {
        "id": np.array([f"PJ{ymd}{i:03d}" for i in range(1, n + 1)], dtype=object),
        "mechanism": mech,
        "op_date": np.full(n, rhythm.day_start(day)),
        "pinghu_town": ph_town,
        "jinshan_town": js_town,
        "location": np.array(location, dtype=object),
        "pinghu_units": np.array(ph_units, dtype=object),
        "jinshan_units": np.array(js_units, dtype=object),
        "outcome": np.array(outcome, dtype=object),
        "linked": np.array(linked, dtype=object),
    }


def csv_bytes(f: Frame, duplicates: set[int]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    cols = [f["id"].tolist(), f["mechanism"].tolist(), fmt_times(f["op_date"], "date")] + [
        f[k].tolist()
        for k in (
            "pinghu_town",
            "jinshan_town",
            "location",
            "pinghu_units",
            "jinshan_units",
            "outcome",
            "linked",
        )
    ]
    for i, row in enumerate(zip(*cols, strict=True)):
        writer.writerow(row)
        if i in duplicates:  # the platform's export retried a page and appended it again
            writer.writerow(row)
    return out.getvalue().encode("utf-8")


def run(ctx: RunContext) -> None:
    for day in ctx.days():
        frame = generate(ctx, day)
        injected = inject(
            frame, SPEC, ctx.rng(FEED, day, DEFECTS), ctx.defect_rate, day=day, file=request_for(day)
        )
        write_file(ctx.home / file_for(day), csv_bytes(frame, injected.duplicates))
        ctx.record(FEED, day, len(frame["id"]), injected)
    ctx.say(f"{FEED}: {sum(ctx.rows[FEED].values()):,} joint operations")
