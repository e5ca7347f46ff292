"""Qingpu fire safety: inspections (消防检查) and IoT alarms (消防物联网告警) behind the fire brigade's API.

The simulator writes what the API serves as JSON Lines under sim/qingpu/fire/, one file per day of
`updatedAt` (`inspections_YYYYMMDD.jsonl`, `alarms_YYYYMMDD.jsonl`); `servers.py` serves them. An alarm
raised late in the evening and handled after midnight is updated, so filed, on the next day, exactly as
a since/until pull on `updatedAt` would find it (those of the last simulated day are left out: they
belong to a day not simulated). Units are the registry's enterprises (same USCCs).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from pingan_sim import places, rhythm
from pingan_sim.context import DEFECTS, RunContext
from pingan_sim.defects import DefectSpec, Frame, inject
from pingan_sim.registry import QINGPU, Population
from pingan_sim.writers import (
    TextFormat,
    encode_text,
    fmt_times,
    json_lines,
    json_strings,
    write_file,
)

INSPECTIONS_FEED = "qingpu_fire_inspections"
ALARMS_FEED = "qingpu_fire_alarms"
INSPECTIONS_PATH = "/api/v1/fire/inspections"
ALARMS_PATH = "/api/v1/fire/alarms"
INSPECTIONS_PER_DAY = 75
ALARMS_PER_DAY = 10_000
DEVICES = 30_000
FIRE_DIR = "sim/qingpu/fire"
JSONL = TextFormat("utf-8", "\n")

# Share of alarms by type and how often an alarm of that type is real.
ALARM_SHARE = {
    "smoke": 0.45,
    "heat": 0.08,
    "electrical": 0.25,
    "water_pressure": 0.12,
    "gas": 0.07,
    "manual": 0.03,
}
TRUE_RATE = {
    "smoke": 0.03,
    "heat": 0.05,
    "electrical": 0.08,
    "water_pressure": 0.15,
    "gas": 0.06,
    "manual": 0.02,
}

INSPECTION_FIELDS = [
    "inspectionId",
    "unitUscc",
    "unitName",
    "inspectionDate",
    "hazardsFound",
    "hazardsRectified",
    "rectifyDeadline",
    "townName",
    "inspector",
    "updatedAt",
]
ALARM_FIELDS = [
    "alarmId",
    "deviceId",
    "unitUscc",
    "alarmType",
    "raisedAt",
    "confirmedAt",
    "handledAt",
    "isTrueAlarm",
    "townName",
    "updatedAt",
]

INSPECTION_SPEC = DefectSpec(
    feed=INSPECTIONS_FEED,
    kinds=("bad_uscc_checksum", "missing_mandatory", "stage_order", "duplicate_delivery"),
    source={
        "id": "inspectionId",
        "uscc": "unitUscc",
        "inspected": "inspectionDate",
        "deadline": "rectifyDeadline",
    },
    uscc="uscc",
    stages=("inspected", "deadline"),
    stage_gap=(1, 10, "D"),  # a deadline set before the inspection it follows from
    mandatory=("uscc", "inspected"),
)
ALARM_SPEC = DefectSpec(
    feed=ALARMS_FEED,
    kinds=(
        "bad_uscc_checksum",
        "unknown_category_code",
        "stage_order",
        "missing_mandatory",
        "duplicate_delivery",
    ),
    source={
        "id": "alarmId",
        "device": "deviceId",
        "uscc": "unitUscc",
        "type": "alarmType",
        "raised": "raisedAt",
        "confirmed": "confirmedAt",
        "handled": "handledAt",
    },
    uscc="uscc",
    code="type",
    unknown_codes=(("YG99", "烟感(新型号)"), ("QT01", "其他告警")),
    stages=("raised", "confirmed", "handled"),
    stage_gap=(2, 30, "m"),
    mandatory=("id", "device", "uscc", "type", "raised"),
)


def _day_file(kind: str, day: date) -> str:
    return f"{FIRE_DIR}/{kind}_{day.strftime('%Y%m%d')}.jsonl"


# --- inspections ---------------------------------------------------------------------------------------


def inspections(ctx: RunContext, pop: Population, day: date) -> Frame:
    rng = ctx.rng(INSPECTIONS_FEED, day)
    towns = ctx.ref.towns[QINGPU]
    n = rhythm.count_for_day(
        rng, rhythm.expected_per_day(INSPECTIONS_PER_DAY, ctx.scale, day, rhythm.WEEKDAY_OFFICE)
    )
    unit = rng.integers(0, len(pop), n)
    at = rhythm.times_in_day(rng, day, n, rhythm.HOURLY_OFFICE)
    # entered into the system later the same day
    updated = np.minimum(
        at + rhythm.lognormal_seconds(rng, n, 3600, 0.8, 300, 6 * 3600),
        rhythm.day_start(day) + np.timedelta64(86399, "s"),
    )
    found = np.where(rng.random(n) < 0.55, 0, 1 + rng.poisson(1.5, n))
    rectified = rng.binomial(found, 0.4)  # fixed on the spot
    deadline = rhythm.day_start(day) + rng.choice(np.array([7, 15, 30]), n).astype("timedelta64[D]")
    deadline[found == rectified] = rhythm.NAT
    station = rng.random(n) < 0.6
    town_names = np.array(towns.names, dtype=object)[pop.town[unit]]
    inspector = [
        f"青浦区消防救援支队{places.town_stem(t)}消防救援站" if s else f"{t}安全生产办公室"
        for t, s in zip(town_names.tolist(), station.tolist(), strict=True)
    ]
    order = np.argsort(updated, kind="stable")
    ymd = day.strftime("%Y%m%d")
    frame = {
        "id": np.array([f"XFJC{ymd}{i:04d}" for i in range(1, n + 1)], dtype=object),
        "uscc": pop.uscc[unit],
        "unit_name": pop.name[unit],
        "inspected": np.full(n, rhythm.day_start(day)),
        "found": found,
        "rectified": rectified,
        "deadline": deadline,
        "town": town_names,
        "inspector": np.array(inspector, dtype=object),
        "updated": updated,
    }
    return {k: v[order] for k, v in frame.items()}


def inspection_lines(f: Frame) -> list[str]:
    ints = lambda a: [str(v) for v in a.tolist()]  # noqa: E731
    cols = [
        json_strings(f["id"]),
        json_strings(f["uscc"]),
        json_strings(f["unit_name"]),
        json_strings(fmt_times(f["inspected"], "date", missing=None), safe=True),
        ints(f["found"]),
        ints(f["rectified"]),
        json_strings(fmt_times(f["deadline"], "date", missing=None), safe=True),
        json_strings(f["town"]),
        json_strings(f["inspector"]),
        json_strings(fmt_times(f["updated"], "offset", missing=None), safe=True),
    ]
    return json_lines(INSPECTION_FIELDS, cols)


# --- alarms --------------------------------------------------------------------------------------------


class Devices:
    """IoT detectors installed in the registry's enterprises; a few are chatty, most are quiet."""

    def __init__(self, ctx: RunContext, pop: Population):
        rng = ctx.rng(ALARMS_FEED)
        n = max(100, round(DEVICES * ctx.scale))
        codes = ctx.ref.codes("qingpu_fire_alarms")
        self.owner = rng.integers(0, len(pop), n)
        self.type = rng.choice(len(codes), size=n, p=ctx.ref.code_weights("qingpu_fire_alarms", ALARM_SHARE))
        self.ids = np.array([f"QPIOT{i:07d}" for i in range(1, n + 1)], dtype=object)
        noise = rng.lognormal(0, 1.2, n)
        self.p = noise / noise.sum()
        self.codes = np.array([c.code for c in codes], dtype=object)
        self.true_rate = np.array([TRUE_RATE[c.category] for c in codes])


def raised_on(ctx: RunContext, pop: Population, devices: Devices, day: date) -> Frame:
    """Alarms raised on `day`, in their final state (some are updated after midnight)."""
    rng = ctx.rng(ALARMS_FEED, day)
    towns = ctx.ref.towns[QINGPU]
    n = rhythm.count_for_day(rng, rhythm.expected_per_day(ALARMS_PER_DAY, ctx.scale, day))
    dev = rng.choice(len(devices.ids), size=n, p=devices.p)
    raised = rhythm.times_in_day(rng, day, n, rhythm.HOURLY_FLAT)
    is_true = rng.random(n) < devices.true_rate[devices.type[dev]]
    confirmed = raised + rhythm.lognormal_seconds(rng, n, 150, 0.8, 20, 7200)
    handled = confirmed + np.where(
        is_true,
        rhythm.lognormal_seconds(rng, n, 2400, 0.9, 60, 8 * 3600),
        rhythm.lognormal_seconds(rng, n, 480, 0.9, 60, 8 * 3600),
    )
    unconfirmed = rng.random(n) < 0.01  # cleared by itself before anyone looked
    confirmed[unconfirmed] = rhythm.NAT
    handled[unconfirmed | (rng.random(n) < 0.02)] = rhythm.NAT
    last = np.where(np.isnat(handled), np.where(np.isnat(confirmed), raised, confirmed), handled)
    updated = last + rng.integers(0, 120, n).astype("timedelta64[s]")
    midnight = (updated - updated.astype("datetime64[D]")).astype(np.int64) == 0
    updated[midnight] += np.timedelta64(1, "s")  # keep day windows (since, until] unambiguous
    ymd = day.strftime("%Y%m%d")
    return {
        "id": np.array([f"ALM{ymd}{i:07d}" for i in range(1, n + 1)], dtype=object),
        "device": devices.ids[dev],
        "uscc": pop.uscc[devices.owner[dev]],
        "type": devices.codes[devices.type[dev]],
        "raised": raised,
        "confirmed": confirmed,
        "handled": handled,
        "true": is_true,
        "town": np.array(towns.names, dtype=object)[pop.town[devices.owner[dev]]],
        "updated": updated,
    }


def _split(frame: Frame, mask: np.ndarray) -> tuple[Frame, Frame]:
    return {k: v[mask] for k, v in frame.items()}, {k: v[~mask] for k, v in frame.items()}


def _concat(a: Frame, b: Frame) -> Frame:
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    order = np.argsort(both["updated"], kind="stable")
    return {k: v[order] for k, v in both.items()}


def alarm_lines(f: Frame) -> list[str]:
    def t(col: str) -> list[str]:
        return json_strings(fmt_times(f[col], "offset", missing=None), safe=True)

    cols = [
        json_strings(f["id"]),
        json_strings(f["device"]),
        json_strings(f["uscc"]),
        json_strings(f["type"]),
        t("raised"),
        t("confirmed"),
        t("handled"),
        ["true" if v else "false" for v in f["true"].tolist()],
        json_strings(f["town"]),
        t("updated"),
    ]
    return json_lines(ALARM_FIELDS, cols)


# --- the run -------------------------------------------------------------------------------------------


def run(ctx: RunContext, pop: Population) -> None:
    for day in ctx.days():
        frame = inspections(ctx, pop, day)
        injected = inject(
            frame,
            INSPECTION_SPEC,
            ctx.rng(INSPECTIONS_FEED, day, DEFECTS),
            ctx.defect_rate,
            day=day,
            file=INSPECTIONS_PATH,
        )
        data = encode_text(inspection_lines(frame), JSONL, duplicates=injected.duplicates)
        write_file(ctx.home / _day_file("inspections", day), data)
        ctx.record(INSPECTIONS_FEED, day, len(frame["id"]), injected)
    ctx.say(f"{INSPECTIONS_FEED}: {sum(ctx.rows[INSPECTIONS_FEED].values()):,} inspections")

    devices = Devices(ctx, pop)
    previous = raised_on(ctx, pop, devices, ctx.start - timedelta(days=1))
    spill = _split(previous, previous["updated"] >= rhythm.day_start(ctx.start))[0]
    for day in ctx.days():
        today = raised_on(ctx, pop, devices, day)
        tomorrow = rhythm.day_start(day + timedelta(days=1))
        late, own = _split(today, today["updated"] >= tomorrow)
        frame = _concat(spill, own)
        spill = late
        injected = inject(
            frame, ALARM_SPEC, ctx.rng(ALARMS_FEED, day, DEFECTS), ctx.defect_rate, day=day, file=ALARMS_PATH
        )
        data = encode_text(alarm_lines(frame), JSONL, duplicates=injected.duplicates)
        write_file(ctx.home / _day_file("alarms", day), data)
        ctx.record(ALARMS_FEED, day, len(frame["id"]), injected)
        if day.day == 1 or day == ctx.end:
            ctx.say(f"{ALARMS_FEED}: {day.isoformat()}")
