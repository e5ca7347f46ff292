"""The profile stage: before a batch commits, compare it with its feed's profile; once it commits, add it.

The batch's canonical rows are read back from its (not yet visible) raw file, profiled the same way a
rebuild would profile the committed day (quality.profile), and judged by quality.profile_checks against
the feed's latest committed days. A blocking finding joins the batch rules' failures (the batch is then
blocked and the day's previous commit stays); a warning is recorded with the quality results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store
from pingan.quality import profile as profiles
from pingan.quality.batch_rules import BatchFailure
from pingan.quality.profile_checks import Delivery, ProfileVerdict, judge_delivery
from pingan.quality.profile_input import from_batch_file


@dataclass(frozen=True)
class ProfiledBatch:
    """The new day's profile (stored if the batch commits) and what the checks said about it."""

    day: profiles.DayProfile
    verdict: ProfileVerdict

    @property
    def failures(self) -> list[BatchFailure]:
        return [BatchFailure(f"profile:{f.check}", f.message) for f in self.verdict.blocking]

    @property
    def warnings(self) -> list[BatchFailure]:
        return [BatchFailure(f"profile:{f.check}", f.message) for f in self.verdict.warnings]


def missing_columns(spec: FeedSpec, source_columns: set[str]) -> list[str]:
    """Spec columns (and melt columns) a delivery that read anything did not have."""
    if not source_columns:
        return []
    expected = list(spec.columns) + (list(spec.melt.columns) if spec.melt else [])
    return sorted(c for c in expected if c not in source_columns)


def profile_batch(
    lake: Store,
    spec: FeedSpec,
    day: date,
    batch_id: str,
    raw_key: str,
    *,
    rows_read: int,
    sources: list[dict],
    source_columns: set[str],
    new_columns: list[str],
    first_pull: bool = False,
) -> ProfiledBatch:
    acceptance = profiles.acceptance_for(lake, spec.feed, day)
    table = from_batch_file(lake, raw_key, profiles.DISTINCT_SAMPLE)
    new = profiles.compute_day_profile(
        spec,
        day,
        batch_id,
        table,
        rows_read=rows_read,
        sources=sources,
        missing_columns=missing_columns(spec, source_columns),
        accepted=acceptance.reason if acceptance else None,
        first_pull=first_pull,
    )
    window = max(spec.profile.repeat_days, spec.profile.history_days)
    stored = [p for p in profiles.day_profiles(lake, spec.feed, day, window) if p.load_date != day]
    delivery = Delivery(new, sorted(source_columns), sorted(new_columns))
    verdict = judge_delivery(
        spec,
        delivery,
        profiles.history(stored, day, spec.profile.history_days),
        stored,
        accepted=acceptance.reason if acceptance else None,
    )
    return ProfiledBatch(new, verdict)


def learn(lake: Store, batch: ProfiledBatch) -> None:
    """The committed day joins its feed's profile (replacing an earlier commit of the same day)."""
    profiles.store_day_profile(lake, batch.day)
