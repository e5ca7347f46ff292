"""When things happen: daily volumes and times of day.

Volumes follow the published patterns the marts are meant to show: more 110 calls on weekends and in
summer, a slow year-on-year decline ("110 alarms down 26.12%"), a night trough around 04:00 and an evening
peak. Grid work follows office hours. All times are local (Asia/Shanghai) datetime64[s] values.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np

# Weights per hour 00..23.
HOURLY_110 = np.array(
    [
        3.2,
        2.4,
        1.8,
        1.3,
        1.0,
        1.1,
        1.7,
        2.8,
        3.9,
        4.4,
        4.6,
        4.7,
        4.6,
        4.5,
        4.6,
        4.8,
        5.0,
        5.3,
        5.8,
        6.2,
        6.3,
        6.0,
        5.2,
        4.1,
    ]
)
HOURLY_OFFICE = np.array(
    [
        0.2,
        0.1,
        0.1,
        0.1,
        0.1,
        0.2,
        0.5,
        1.5,
        4.0,
        6.0,
        6.5,
        5.5,
        3.5,
        5.0,
        6.5,
        6.5,
        6.0,
        4.5,
        2.0,
        1.2,
        0.9,
        0.6,
        0.4,
        0.3,
    ]
)
HOURLY_FLAT = np.array(
    [
        3.0,
        2.8,
        2.7,
        2.6,
        2.6,
        2.8,
        3.3,
        4.0,
        4.6,
        5.0,
        5.1,
        5.0,
        4.8,
        4.9,
        5.0,
        5.0,
        4.9,
        4.8,
        4.6,
        4.4,
        4.2,
        3.9,
        3.6,
        3.3,
    ]
)
# Monday .. Sunday
WEEKDAY_110 = (0.95, 0.94, 0.95, 0.96, 1.03, 1.12, 1.08)
WEEKDAY_OFFICE = (1.12, 1.10, 1.08, 1.08, 1.05, 0.80, 0.72)
WEEKDAY_FLAT = (1.0,) * 7

_TREND_EPOCH = date(2025, 1, 1)  # volumes equal the base here, ~8% more a year earlier
MIN_PER_DAY = 3.0


def expected_per_day(
    base: float, scale: float, day: date, weekday=WEEKDAY_FLAT, *, trend: bool = False, seasonal: bool = False
) -> float:
    lam = base * scale * weekday[day.weekday()]
    if trend:  # about -8% a year
        lam *= 0.92 ** ((day - _TREND_EPOCH).days / 365.25)
    if seasonal:  # warm months are busier, peak in late July
        lam *= 1 + 0.08 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 205) / 365.25)
    # a few a day at least, so small test runs still exercise every feed
    return max(lam, MIN_PER_DAY)


def count_for_day(rng: np.random.Generator, expected: float) -> int:
    return int(rng.poisson(expected))


def day_start(day: date) -> np.datetime64:
    return np.datetime64(day, "s")


def times_in_day(rng: np.random.Generator, day: date, n: int, hourly: np.ndarray) -> np.ndarray:
    """n sorted local times within the day, drawn from an hourly profile (never exactly 00:00:00)."""
    hours = rng.choice(24, size=n, p=hourly / hourly.sum())
    seconds = hours * 3600 + rng.integers(0, 3600, n)
    seconds = np.maximum(np.sort(seconds), 1)  # midnight belongs to no one: keep windows unambiguous
    return day_start(day) + seconds.astype("timedelta64[s]")


def lognormal_seconds(
    rng: np.random.Generator, n: int, median_s: float, sigma: float, lo_s: float, hi_s: float
) -> np.ndarray:
    """Durations in seconds (timedelta64[s]) with a given median, clipped to [lo, hi]."""
    values = np.clip(rng.lognormal(math.log(median_s), sigma, n), lo_s, hi_s)
    return values.astype(np.int64).astype("timedelta64[s]")


NAT = np.datetime64("NaT", "s")
