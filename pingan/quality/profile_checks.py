"""A delivery judged against its feed's own history before it commits: the checks that catch a file that
parses but is wrong (half a file, yesterday's file, a column gone empty, every time shifted by a zone).

Each finding names the check, what the history expected and what the delivery shows. Tolerances are the
feed's `profile` (defaults in connectors/_defaults.yaml); small days get sampling noise on top (three
standard deviations of a Poisson count or a binomial share), so a quiet Sunday never blocks. With fewer
than `min_history_days` committed days the feed is learning: only the same-content check applies.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from pingan.core.feed_spec import FeedSpec
from pingan.quality.profile import DayProfile

VOLUME, NULLS, REPEAT, SHIFT = "profile_volume", "profile_null_share", "profile_repeat", "profile_time_shift"
MIN_ROWS_FOR_SHARES = 20  # null shares of fewer rows say nothing
CATCH_UP_SPAN_HOURS = 30.0
MIN_ROWS_FOR_SHIFT = 200  # the 30-night soak blocked 47 grid-event rows whose median wandered 5.3 h  # a delivery whose events spread over more than this holds several days


@dataclass(frozen=True)
class ProfileFinding:
    check: str
    expected: str
    observed: str

    def cause(self, spec: FeedSpec, day: str) -> str:
        return f"{spec.feed} {day}: {self.check}: expected {self.expected}, observed {self.observed}"


def judge_profile(spec: FeedSpec, today: DayProfile, past: list[DayProfile]) -> list[ProfileFinding]:
    findings = repeated_content(spec, today, past)
    if len(past) < spec.profile.min_history_days:
        return findings  # learning: too little history to say what is usual
    return (
        findings + volume(spec, today, past) + null_shares(spec, today, past) + time_shift(spec, today, past)
    )


def repeated_content(spec: FeedSpec, today: DayProfile, past: list[DayProfile]) -> list[ProfileFinding]:
    if not today.rows:
        return []  # every empty delivery hashes alike: an empty day is judged by empty_days, not here
    for day in (d for d in past if d.rows):
        same = set(today.source_sha256) & set(day.source_sha256)
        if same:
            return [
                ProfileFinding(REPEAT, "a delivery of its own", f"the same file as {day.load_date} (sha256)")
            ]
    ids = set(today.record_ids)
    if len(ids) < MIN_ROWS_FOR_SHARES:
        return []
    for day in past:
        share = len(ids & set(day.record_ids)) / len(ids)
        if share >= spec.profile.repeat_share:
            return [ProfileFinding(REPEAT, f"under {spec.profile.repeat_share:.0%} of record ids seen before",
                                   f"{share:.0%} of its record ids repeat {day.load_date}")]  # fmt: skip
    return []


def volume(spec: FeedSpec, today: DayProfile, past: list[DayProfile]) -> list[ProfileFinding]:
    same_weekday = [d.rows for d in past if d.weekday == today.weekday]
    seen = same_weekday if len(same_weekday) >= 3 else [d.rows for d in past]
    usual = statistics.median(seen)
    low, high = spec.profile.volume_ratio
    if usual < MIN_ROWS_FOR_SHARES and today.rows <= MIN_ROWS_FOR_SHARES * high:
        return []  # a handful of rows a day comes in bursts (joint operations): only a flood says anything
    noise = 4 * math.sqrt(max(usual, 1))  # a Poisson count's own wander, which rules a small feed
    # the loosest of: the usual day scaled by the tolerance, its noise, the quietest / busiest day seen
    # (a weekend, a holiday, until enough same-weekday days tell the weekly rhythm apart)
    lo = max(0.0, min(usual * low, usual - noise, 0.8 * min(seen)))
    hi = max(usual * high, usual + noise, 1.25 * max(seen))
    if lo <= today.rows <= hi:
        return []
    return [ProfileFinding(VOLUME, f"{lo:,.0f}..{hi:,.0f} rows (usual {usual:,.0f})", f"{today.rows:,} rows")]


def null_shares(spec: FeedSpec, today: DayProfile, past: list[DayProfile]) -> list[ProfileFinding]:
    if today.rows < MIN_ROWS_FOR_SHARES:
        return []
    found = []
    for column, share in sorted(today.null_share.items()):
        usual_shares = [d.null_share[column] for d in past if column in d.null_share]
        if not usual_shares:
            continue
        usual = statistics.median(usual_shares)
        allowed = (
            usual + spec.profile.null_share_jump + 3 * math.sqrt(max(usual * (1 - usual), 0.01) / today.rows)
        )
        if share > allowed:
            found.append(ProfileFinding(NULLS, f"{column} null in at most {min(allowed, 1):.0%} of rows "
                                               f"(usually {usual:.0%})", f"{share:.0%}"))  # fmt: skip
    return found


def time_shift(spec: FeedSpec, today: DayProfile, past: list[DayProfile]) -> list[ProfileFinding]:
    usual_offsets = [d.event_offset_hours for d in past if d.event_offset_hours is not None]
    if today.event_offset_hours is None or len(usual_offsets) < 3 or today.rows < MIN_ROWS_FOR_SHIFT:
        return []  # a small day's median is noise (lifecycle stages cluster): a zone mistake shows at size
    if (today.event_span_hours or 0) > CATCH_UP_SPAN_HOURS:
        return []  # several days at once (a catch-up after a late day): the median moves by design
    usual = statistics.median(usual_offsets)
    shift = today.event_offset_hours - usual
    # the median of a small day wanders: four standard errors of it (spread p10..p90 is about 2.56 sigma)
    sigma = (today.event_span_hours or 24.0) / 2.56
    wander = 4 * 1.2533 * sigma / math.sqrt(max(today.rows, 1))
    if abs(shift) < max(spec.profile.time_shift_hours, wander):
        return []
    guess = " (a UTC export read as local time?)" if 6 <= abs(shift) <= 10 else ""
    return [ProfileFinding(SHIFT, f"median event time {usual:+.1f} h from the day's start",
                           f"{today.event_offset_hours:+.1f} h, {shift:+.1f} h off{guess}")]  # fmt: skip
