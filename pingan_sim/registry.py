"""Qingpu's enterprise tax registry (税务登记): a SQLite table updated in place.

The enterprise population depends on the seed and scale only, so the fire inspections and IoT alarms
name the same USCCs as the registry whatever date range is simulated. Each simulated day the tax office
changes a few hundred rows (credit rating, status, address, legal representative, name) and stamps
`updated_at`; the real system keeps only the latest state, so a nightly connector sees a day's changes
through `updated_at` and must keep history itself.

A simulated range is written before any night reads it, so one in-place table (the state at the end of
the range) would hide from night D every enterprise changed after D, although the fire data of D names
it. The table therefore holds what the nightly pulls of the in-place table see: every enterprise as it
stood at the end of the range's first day, then each later change as its own row stamped with its
`updated_at`. Read night by night on the cursor, it gives the same rows as the real table would; the
latest row per USCC up to day D is the registry as of D, whichever day the run started.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, fields
from datetime import date, timedelta

import numpy as np

from pingan_sim import places, rhythm
from pingan_sim.context import DEFECTS, HISTORY, RunContext
from pingan_sim.defects import DefectSpec, Frame, inject
from pingan_sim.identities import person_names, resident_ids, usccs
from pingan_sim.writers import fmt_times

FEED = "qingpu_tax_registry"
FILE = "sim/qingpu/tax_registry.sqlite"
ENTERPRISES = 20_000
CHANGES_PER_DAY = 300
QINGPU = "310118"
POPULATION_YEAR = 2024  # ages of legal representatives are reckoned from here
HISTORY_FROM = date(2023, 1, 1)  # registry changes are simulated from here (or the run's start, if earlier)

# GB/T 4754-2017 classes common in Qingpu, with the word a company name uses for them.
INDUSTRIES = (
    ("C1810", "服饰", 5),
    ("C2927", "塑料制品", 4),
    ("C3311", "金属制品", 5),
    ("C3484", "机械", 6),
    ("C3976", "光电科技", 3),
    ("E4790", "建设工程", 5),
    ("F5137", "电器", 4),
    ("F5191", "电子商务", 8),
    ("F5212", "超市", 5),
    ("G5431", "物流", 8),
    ("H6110", "酒店管理", 2),
    ("H6210", "餐饮管理", 7),
    ("I6513", "软件科技", 6),
    ("K7010", "置业", 2),
    ("L7212", "投资管理", 4),
    ("M7519", "科技发展", 9),
    ("O8010", "家政服务", 3),
    ("A0141", "蔬果", 2),
    ("A0412", "水产", 2),
)
TRADE_NAME_CHARS = (
    "鑫盛泰华宏达兴隆瑞祥丰源恒通康宁嘉禾金德信和安永昌明辉晟欣荣锦澜润泽创新远航淀湖青浦沪溪云峰"
)
SHOPS = ("便利店", "小吃店", "五金店", "理发店", "维修部", "水果店")
STATUSES = ("正常", "非正常户", "注销")
RATINGS = ("A", "B", "M", "C", "D")
COLUMNS = (
    "nsrsbh",
    "nsrmc",
    "fddbr_xm",
    "fddbr_sfzh",
    "hy_dm",
    "scjydz",
    "jd_mc",
    "djzt",
    "nsxydj",
    "updated_at",
)

SPEC = DefectSpec(
    feed=FEED,
    kinds=("bad_uscc_checksum", "bad_id_checksum", "missing_mandatory", "duplicate_delivery"),
    source={"uscc": "nsrsbh", "name": "nsrmc", "rep_id": "fddbr_sfzh", "status": "djzt"},
    id_col="uscc",
    uscc="uscc",
    person_ids="rep_id",
    mandatory=("name", "status"),
)


@dataclass
class Population:
    """Enterprises registered in Qingpu as parallel arrays (index = enterprise)."""

    uscc: np.ndarray
    name: np.ndarray
    rep_name: np.ndarray
    rep_id: np.ndarray
    industry: np.ndarray
    address: np.ndarray
    town: np.ndarray  # index into the Qingpu towns
    status: np.ndarray  # index into STATUSES
    rating: np.ndarray  # index into RATINGS

    def __len__(self) -> int:
        return len(self.uscc)

    def copy(self) -> Population:
        return Population(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


def _trade_names(rng: np.random.Generator, n: int) -> list[str]:
    a = rng.integers(0, len(TRADE_NAME_CHARS), n).tolist()
    b = rng.integers(0, len(TRADE_NAME_CHARS), n).tolist()
    return [TRADE_NAME_CHARS[i] + TRADE_NAME_CHARS[j] for i, j in zip(a, b, strict=True)]


def _names(
    rng: np.random.Generator, codes: np.ndarray, industry: np.ndarray, town_names: np.ndarray
) -> list[str]:
    """Company names in the registration style of their type (the USCC's second character)."""
    trade = _trade_names(rng, len(codes))
    shop = rng.integers(0, len(SHOPS), len(codes)).tolist()
    out = []
    rows = zip(codes.tolist(), industry.tolist(), town_names.tolist(), trade, shop, strict=True)
    for code, ind, town, t, s in rows:
        word = INDUSTRIES[ind][1]
        if code[1] == "2":  # 个体工商户
            out.append(f"青浦区{places.town_stem(town)}{t}{SHOPS[s]}")
        elif code[1] == "3":  # 农民专业合作社
            out.append(f"上海{t}{word}专业合作社")
        else:
            out.append(f"上海{t}{word}有限公司")
    return out


def population(ctx: RunContext) -> Population:
    """The same enterprises for a seed and scale, whatever dates are simulated."""
    rng = ctx.rng(FEED)
    towns = ctx.ref.towns[QINGPU]
    n = max(200, round(ENTERPRISES * ctx.scale))
    codes = np.unique(usccs(rng, n + n // 100 + 10, 310118))  # drop the rare collision, keep n
    codes = codes[rng.permutation(len(codes))[:n]]
    weights = np.array([w for _, _, w in INDUSTRIES], dtype=float)
    industry = rng.choice(len(INDUSTRIES), size=n, p=weights / weights.sum())
    town = places.pick_towns(rng, towns, n)
    town_names = np.array(towns.names, dtype=object)[town]
    return Population(
        uscc=codes.astype(object),
        name=np.array(_names(rng, codes, industry, town_names), dtype=object),
        rep_name=np.array(person_names(rng, n), dtype=object),
        rep_id=resident_ids(rng, n, POPULATION_YEAR, QINGPU).astype(object),
        industry=industry,
        address=np.array(places.addresses(rng, towns, town), dtype=object),
        town=town,
        status=rng.choice(3, size=n, p=[0.90, 0.06, 0.04]),
        rating=rng.choice(5, size=n, p=[0.22, 0.50, 0.18, 0.07, 0.03]),
    )


def _change_day(ctx: RunContext, pop: Population, updated: np.ndarray, day: date) -> np.ndarray:
    """Apply one day's registry changes in place; returns the enterprises changed (at most once a day)."""
    rng = ctx.rng(FEED, day)
    towns = ctx.ref.towns[QINGPU]
    lam = rhythm.expected_per_day(CHANGES_PER_DAY, ctx.scale, day, rhythm.WEEKDAY_OFFICE)
    live = np.flatnonzero(pop.status != STATUSES.index("注销"))
    k = min(rhythm.count_for_day(rng, lam), len(live))
    rows = rng.choice(live, size=k, replace=False)
    kind = rng.choice(5, size=k, p=[0.35, 0.25, 0.15, 0.15, 0.10])
    updated[rows] = rhythm.times_in_day(rng, day, k, rhythm.HOURLY_OFFICE)[rng.permutation(k)]

    r = rows[kind == 0]  # credit rating re-assessed
    pop.rating[r] = (pop.rating[r] + rng.integers(1, 5, len(r))) % 5
    r = rows[kind == 1]  # status: abnormal (非正常户) and back, or deregistered
    normal = pop.status[r] == 0
    pop.status[r] = np.where(
        normal, np.where(rng.random(len(r)) < 0.75, 1, 2), np.where(rng.random(len(r)) < 0.6, 0, 2)
    )
    r = rows[kind == 2]  # moved within its town
    pop.address[r] = places.addresses(rng, towns, pop.town[r])
    r = rows[kind == 3]  # new legal representative
    pop.rep_name[r] = person_names(rng, len(r))
    pop.rep_id[r] = resident_ids(rng, len(r), day.year, QINGPU)
    r = rows[kind == 4]  # renamed
    pop.name[r] = _names(rng, pop.uscc[r], pop.industry[r], np.array(towns.names, dtype=object)[pop.town[r]])
    return rows


def _rows(ctx: RunContext, pop: Population, updated: np.ndarray, rows: np.ndarray) -> Frame:
    """The table rows of these enterprises in their current state."""
    return {
        "uscc": pop.uscc[rows],
        "name": pop.name[rows],
        "rep_name": pop.rep_name[rows],
        "rep_id": pop.rep_id[rows],
        "industry": np.array([INDUSTRIES[i][0] for i in pop.industry[rows]], dtype=object),
        "address": pop.address[rows],
        "town": np.array(ctx.ref.towns[QINGPU].names, dtype=object)[pop.town[rows]],
        "status": np.array(STATUSES, dtype=object)[pop.status[rows]],
        "rating": np.array(RATINGS, dtype=object)[pop.rating[rows]],
        "updated": updated[rows],
    }


def run(ctx: RunContext) -> Population:
    """Simulate the registry over the run and write the table; returns the population for the fire feeds."""
    pop = population(ctx)
    # the fire brigade's own record of unit identities: registry changes and defects stay here
    clean = pop.copy()
    n = len(pop)
    # History runs from a fixed origin, so a run that starts on day D and one that started earlier hold
    # the same registry as of D (row for row in what a pull up to D reads).
    origin = min(HISTORY_FROM, ctx.start)
    rng = ctx.rng(FEED, origin, HISTORY)
    updated = rhythm.day_start(origin) - rng.integers(86400, 3 * 365 * 86400, n).astype("timedelta64[s]")
    changes: dict[str, int] = {}
    parts: list[Frame] = []
    for i in range((ctx.end - origin).days + 1):
        day = origin + timedelta(days=i)
        changed = _change_day(ctx, pop, updated, day)
        if day == ctx.start:  # what the first night's pull reads: everyone as of the end of this day
            parts.append(_rows(ctx, pop, updated, np.arange(n)))
        elif day > ctx.start:  # what each later night's pull reads: that day's changes
            parts.append(_rows(ctx, pop, updated, np.sort(changed)))
        if day >= ctx.start:
            changes[day.isoformat()] = len(changed)
    frame: Frame = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # defects only in rows updated during the run, filed under the day of their updated_at
    updated_day = frame["updated"].astype("datetime64[D]")
    duplicates: set[int] = set()
    for day in ctx.days():
        rows = np.flatnonzero(updated_day == np.datetime64(day))
        sub = {k: v[rows] for k, v in frame.items()}
        injected = inject(sub, SPEC, ctx.rng(FEED, day, DEFECTS), ctx.defect_rate, day=day, file=FILE)
        for k in frame:
            frame[k][rows] = sub[k]
        duplicates.update(rows[i] for i in injected.duplicates)
        ctx.record(FEED, day, len(rows), injected)
    _write(ctx.home / FILE, frame, duplicates)
    ctx.extra[FEED] = {
        "rows_before_start": int((updated_day < np.datetime64(ctx.start)).sum()),
        "changes": changes,
        "enterprises": n,
        "table_rows": len(frame["uscc"]),
    }
    ctx.say(f"{FEED}: {n:,} enterprises, {sum(changes.values()):,} changes")
    return clean


def _write(path, frame: Frame, duplicates: set[int]) -> None:
    """Write a fresh database next to the target and swap it in: readers never see half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    updated = fmt_times(frame["updated"])
    cols = [
        frame[k].tolist()
        for k in ("uscc", "name", "rep_name", "rep_id", "industry", "address", "town", "status", "rating")
    ] + [updated]
    rows = []
    for i, row in enumerate(zip(*cols, strict=True)):
        rows.append(row)
        if i in duplicates:  # no key on the legacy table: a double submit stores the row twice
            rows.append(row)
    con = sqlite3.connect(tmp)
    try:
        con.execute(f"CREATE TABLE tax_registration ({', '.join(f'{c} TEXT' for c in COLUMNS)})")
        con.execute("CREATE INDEX ix_tax_registration_updated_at ON tax_registration (updated_at)")
        con.executemany(f"INSERT INTO tax_registration VALUES ({', '.join('?' * len(COLUMNS))})", rows)
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
