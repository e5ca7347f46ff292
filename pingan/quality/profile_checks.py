"""A delivery judged against its feed's profile before it commits: volume, columns, null shares, repeated
content and the timing of its events.

Each check compares what the new batch looks like (a DayProfile computed from the rows it would commit)
with the feed's history (the latest committed days) and says block or warn, as the feed declares
(`profile.warn` in its YAML). Tolerances are the feed's `profile` policy (connectors/_defaults.yaml):
a relative band widened by the noise a count or share of that size shows anyway, so a quiet day of a
small feed is not a false alarm while a file cut in half is. With fewer committed days than
`learning_days` the feed is learning: only the absolute checks run (missing columns, repeated content).

Every finding names the feed, the day, the check, the expected range and the observed value.
"""

from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pingan.core.feed_spec import FeedSpec, ProfilePolicy
from pingan.quality.profile import DayProfile, sampled

Action = Literal["block", "warn"]
MIN_IDS_FOR_OVERLAP = 10
OVERLAP_PROBE = 4096  # ids of the new day an overlap share is estimated from (a share's error about 1%)  # fewer record ids than this: an overlap share says nothing
MIN_EVENT_DAYS = 3  # history days with enough events before the median time is judged
ZONE_HINTS = {"early": "a UTC export without its zone?", "late": "local times labelled as UTC (Z)?"}


@dataclass(frozen=True)
class Finding:
    feed: str
    day: date
    check: str
    action: Action
    expected: str
    observed: str
    hint: str = ""

    @property
    def message(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return (
            f"{self.feed} {self.day}: {self.check}: expected {self.expected}, observed {self.observed}{hint}"
        )


@dataclass(frozen=True)
class ProfileVerdict:
    learning: bool
    history_days: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.action == "block"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.action == "warn"]


@dataclass(frozen=True)
class Delivery:
    """What the checks know of the new batch besides its DayProfile."""

    profile: DayProfile
    source_columns: list[str]  # columns the delivery had (union over its files and pages)
    new_columns: list[str]


class _Judge:
    """Collects the findings of one delivery, deciding block or warn per check from the feed's policy."""

    def __init__(self, spec: FeedSpec, day: date, accepted: str | None) -> None:
        self.spec, self.day, self.accepted = spec, day, accepted
        self.findings: list[Finding] = []

    def add(self, check: str, expected: str, observed: str, hint: str = "", action: Action | None = None):
        if action is None:
            action = "warn" if (check in self.spec.profile.warn or self.accepted) else "block"
        if self.accepted:
            hint = f"{hint}; accepted: {self.accepted}" if hint else f"accepted: {self.accepted}"
        self.findings.append(Finding(self.spec.feed, self.day, check, action, expected, observed, hint))


def judge_delivery(
    spec: FeedSpec,
    delivery: Delivery,
    history: list[DayProfile],
    others: list[DayProfile],
    *,
    accepted: str | None = None,
) -> ProfileVerdict:
    """The profile checks on one delivery. `history`: the committed days it is compared with (before it);
    `others`: the other committed days within the feed's `repeat_days` (for repeated content). A day an
    operator accepted (`accepted`: the reason) only warns."""
    policy = spec.profile
    judge = _Judge(spec, delivery.profile.load_date, accepted)
    check_columns(judge, spec, delivery, history)
    check_repeats(judge, policy, delivery.profile, history, others)
    learning = len(history) < policy.learning_days
    if not learning:
        check_volume(judge, policy, delivery.profile, history)
        check_null_shares(judge, policy, delivery.profile, history)
        check_event_shift(judge, policy, delivery.profile, history)
    return ProfileVerdict(learning, len(history), judge.findings)


# --- absolute checks ----------------------------------------------------------------------------------
RECENT_DAYS = 7  # a spec column the feed delivered on each of its latest days is expected in the next


def check_columns(judge: _Judge, spec: FeedSpec, delivery: Delivery, history: list[DayProfile]) -> None:
    """A spec column the feed has been delivering (each of its latest days) and this delivery lacks blocks,
    unless the spec marks it optional. One the feed has not been delivering (or any, on a feed without
    history) is only recorded (the manifest's schema_drift.missing_columns). New columns are reported."""
    present = set(delivery.source_columns)
    if not present:  # nothing was read: the empty-batch rule speaks for it
        return
    melted = set(spec.melt.columns) if spec.melt else set()
    absent = [s for s, c in spec.columns.items() if s not in present and c.optional is None]
    absent += [s for s in sorted(melted) if s not in present]
    recent = history[-RECENT_DAYS:]
    delivered = [s for s in absent if recent and all(s not in p.missing_columns for p in recent)]
    renamed = f"new columns {delivery.new_columns} (renamed?)" if delivery.new_columns else ""
    if delivered:
        judge.add(
            "missing_column",
            f"columns {sorted(delivered)} (delivered on each of the latest {len(recent)} days; "
            "mark one optional with a reason if it may be absent)",
            f"absent; columns present: {sorted(present)}",
            renamed,
        )
    elif delivery.new_columns:
        judge.add(
            "new_column", "only the spec's columns", f"new columns {delivery.new_columns}", action="warn"
        )


class IdSets:
    """Overlaps of days' record-id hashes, estimated from a probe of the new day's ids (a large day holds
    tens of thousands; each day's list is filtered and cut once per judgement)."""

    def __init__(self) -> None:
        self._lists: dict[tuple[date, bool], list[str]] = {}

    def ids(self, day: DayProfile, only_sampled: bool = False) -> list[str]:
        """The day's hashes, sorted as stored; only the sampled ones when the other side is sampled."""
        key = (day.load_date, only_sampled)
        if key not in self._lists:
            self._lists[key] = sampled(day.id_hashes) if only_sampled else day.id_hashes
        return self._lists[key]

    def overlap(self, new: DayProfile, other: DayProfile) -> float | None:
        """Share of the new day's record ids that the other day also committed (on the common sample):
        a sampled day holds only the sample already, so only the other side (a small day) is filtered.
        The share is measured on the new day's first OVERLAP_PROBE hashes: hashes are random, so the
        smallest ones are a fair sample, and the other day's ids can only match up to the probe's largest."""
        probe = self.ids(new, other.ids_sampled and not new.ids_sampled)[:OVERLAP_PROBE]
        if len(probe) < MIN_IDS_FOR_OVERLAP:
            return None
        theirs = self.ids(other, new.ids_sampled and not other.ids_sampled)
        candidates = frozenset(theirs[: bisect.bisect_right(theirs, probe[-1])])
        return sum(1 for h in probe if h in candidates) / len(probe)


def overlap(new: DayProfile, other: DayProfile) -> float | None:
    return IdSets().overlap(new, other)


def usual_overlap(history: list[DayProfile], sets: IdSets | None = None) -> float:
    """The largest overlap one of the latest committed days had with the day before it: how much
    re-delivery is normal for this feed (an incremental source re-sends updated records)."""
    sets = sets or IdSets()
    recent = history[-(RECENT_DAYS + 1) :]
    shares = [sets.overlap(b, a) for a, b in zip(recent, recent[1:], strict=False)]
    return max((s for s in shares if s is not None), default=0.0)


def check_repeats(
    judge: _Judge, policy: ProfilePolicy, new: DayProfile, history: list[DayProfile], others: list[DayProfile]
) -> None:
    """The same source bytes, or mostly the same record ids, as another committed day: a stale re-delivery.
    A delivery without rows is not judged here: every empty file (or header-only file) hashes alike, and an
    empty day is the empty-batch rule's to judge (the 90-night soak blocked a declared empty day of fire
    inspections as the same file as an earlier empty day)."""
    if new.rows_read == 0:
        return
    hashes = set(new.source_sha256)
    for other in others:
        if hashes and hashes <= set(other.source_sha256):
            judge.add(
                "repeat_content",
                "a delivery not committed before",
                f"the same source file (sha256 {sorted(hashes)[0][:12]}…) as {other.load_date}",
                f"repeats {other.load_date}",
            )
            return
    sets = IdSets()
    limit = min(0.95, max(policy.repeat_overlap, usual_overlap(history, sets) + 0.25))
    # record ids against the days near this one (bytes were compared with every day read above)
    near = [o for o in others if abs((o.load_date - new.load_date).days) <= policy.history_days]
    shares = [(s, o) for o in near if (s := sets.overlap(new, o)) is not None]
    if not shares:
        return
    share, other = max(shares, key=lambda so: so[0])
    if share > limit:
        judge.add(
            "repeat_content",
            f"at most {limit:.0%} of record ids already committed on one other day",
            f"{share:.0%} of them committed on {other.load_date}",
            f"repeats {other.load_date}",
        )


# --- checks against history ---------------------------------------------------------------------------
def expected_rows(new: DayProfile, history: list[DayProfile]) -> tuple[float, float]:
    """(usual rows read on the new day's weekday, their spread beyond the weekday pattern).

    Usual: the median of the same weekday if the history has two of them, else of all its days. Spread:
    the standard deviation a median absolute deviation implies, of each day's count over its own
    weekday's median (0 below four days), times the usual count."""
    days = [p for p in history if not p.first_pull]
    by_weekday: dict[int, list[int]] = {}
    for p in days:
        by_weekday.setdefault(p.weekday, []).append(p.rows_read)
    overall = float(statistics.median(p.rows_read for p in days))
    usual = {wd: float(statistics.median(c)) for wd, c in by_weekday.items() if len(c) >= 2}
    expected = usual.get(new.weekday, overall)
    if len(days) < 4:
        return expected, 0.0
    ratios = [p.rows_read / max(usual.get(p.weekday, overall), 1.0) for p in days]
    centre = statistics.median(ratios)
    return expected, expected * 1.4826 * statistics.median(abs(r - centre) for r in ratios)


def volume_range(
    expected: float, spread: float, policy: ProfilePolicy, rows_per_record: int = 1
) -> tuple[float, float]:
    """The band a day's row count may fall in: the relative band, or the noise if that is wider: a Poisson
    count's (exact for small counts, where the normal approximation is far too lenient below and too
    strict above), or, for a feed whose history varies clearly more than a Poisson count (twice its
    variance), that spread. A melted feed's rows come in records of up to `rows_per_record` rows (a grid
    event's stages): its noise is that of the records, counted in rows (the 90-night soak blocked a
    quiet day of 18 grid events, 55 stage rows, judged as if each row were independent)."""
    tail = 0.5 * math.erfc(policy.volume_sigmas / math.sqrt(2))  # the normal tail `volume_sigmas` stands for
    records_low, records_high = poisson_quantiles(expected / rows_per_record, tail)
    low, high = records_low * rows_per_record, records_high * rows_per_record
    low, high = min(expected * policy.volume_low, low), max(expected * policy.volume_high, high)
    if spread**2 > 2 * max(expected, 1.0):
        low = min(low, expected - policy.volume_sigmas * spread)
        high = max(high, expected + policy.volume_sigmas * spread)
    return low, high


def poisson_quantiles(lam: float, tail: float) -> tuple[float, float]:
    """(lowest, highest) counts a Poisson(lam) day reaches outside probability `tail` on either side."""
    if lam > 500:  # the normal approximation is good here, and the sum below long
        z = math.sqrt(2) * _erfc_inverse(2 * tail)
        return lam - z * math.sqrt(lam), lam + z * math.sqrt(lam)
    k, pmf, cdf, low = 0, math.exp(-lam), math.exp(-lam), None
    while cdf < 1 - tail:
        if low is None and cdf >= tail:
            low = k
        k += 1
        pmf *= lam / k
        cdf += pmf
    return float(low if low is not None else k), float(k)


def _erfc_inverse(y: float) -> float:
    """x with erfc(x) = y, by bisection (y in (0, 1]); called once per check, no scipy needed."""
    lo, hi = 0.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erfc(mid) > y else (lo, mid)
    return (lo + hi) / 2


def rows_per_record(spec: FeedSpec) -> int:
    """Rows one source record can become: a melted feed's stage columns, else one."""
    return len(spec.melt.columns) if spec.melt else 1


def check_volume(judge: _Judge, policy: ProfilePolicy, new: DayProfile, history: list[DayProfile]) -> None:
    if new.first_pull or not [p for p in history if not p.first_pull]:
        return
    expected, spread = expected_rows(new, history)
    low, high = volume_range(expected, spread, policy, rows_per_record(judge.spec))
    if low <= new.rows_read <= high:
        return
    hint = "truncated or partial delivery?" if new.rows_read < low else "delivered several times over?"
    judge.add(
        "volume",
        f"{max(low, 0):,.0f}..{high:,.0f} rows (usual {expected:,.0f} on {_weekday(new.weekday)})",
        f"{new.rows_read:,} rows",
        hint,
    )


def _weekday(n: int) -> str:
    return ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")[n]


def check_null_shares(
    judge: _Judge, policy: ProfilePolicy, new: DayProfile, history: list[DayProfile]
) -> None:
    """A column far emptier than it ever was in the history (a dropped or renamed source column)."""
    n = max(new.rows_written, 1)
    jumps = []
    for column, share in sorted(new.null_share.items()):
        past = [p.null_share[column] for p in history if column in p.null_share]
        if not past:
            continue
        usual = max(past)
        p = max(usual * (1 - usual), 0.0475)  # the noise of a share near 0 or 1 is not 0
        allowed = usual + policy.null_share_jump + 3 * math.sqrt(p / n)
        if share > allowed:
            jumps.append((column, usual, allowed, share))
    for column, usual, allowed, share in jumps:
        judge.add(
            "null_share",
            f"{column} null in at most {min(allowed, 1):.0%} of rows (usually up to {usual:.0%})",
            f"{share:.0%} null",
            "source column dropped or renamed?",
        )


def check_event_shift(
    judge: _Judge, policy: ProfilePolicy, new: DayProfile, history: list[DayProfile]
) -> None:
    """The whole delivery's events moved by hours against the feed's daily rhythm: a zone mistake.

    The day's events per hour are compared with the history's hourly profile moved by -12..+11 hours; the
    move that explains them best must beat no move at all by `event_shift_evidence` (a log-likelihood
    ratio), and that move must be of `event_shift_hours` or more: a normal small day can look a few hours
    off (the 90-night soak saw 60 incidents look 4 h early at log-likelihood 8; over 90 simulated days per
    feed no normal day's best move exceeded 5 h with evidence above 4.4), while a zone mistake moves every
    event by eight and its best move lands at 5 h or more on almost every day. A feed whose events spread
    evenly over the day never looks shifted."""
    if len(new.event_histogram) != 24 or new.event_rows < policy.event_min_rows:
        return
    past = [p.event_histogram for p in history if len(p.event_histogram) == 24 and p.event_rows]
    if len(past) < MIN_EVENT_DAYS:
        return
    shift, evidence = best_shift(new.event_histogram, [sum(h) for h in zip(*past, strict=True)])
    if abs(shift) < policy.event_shift_hours or evidence < policy.event_shift_evidence:
        return
    direction = "early" if shift < 0 else "late"
    judge.add(
        "event_shift",
        f"{new.event_column} in the feed's usual hours of the day (no shift)",
        f"its hours best match the usual ones moved {shift:+d} h (log-likelihood {evidence:.0f} over no move)",
        f"{abs(shift)} h {direction}: {ZONE_HINTS[direction]}",
    )


def best_shift(day: list[int], usual: list[int]) -> tuple[int, float]:
    """(hours the day's events look moved by, how much better that explains them than no move)."""
    total = sum(usual)
    log_p = [math.log((c + 1) / (total + 24)) for c in usual]  # +1: an hour never seen is not impossible

    def loglik(shift: int) -> float:
        return sum(n * log_p[(h - shift) % 24] for h, n in enumerate(day) if n)

    base = loglik(0)
    return max(((s, loglik(s) - base) for s in range(-12, 12)), key=lambda se: se[1])
