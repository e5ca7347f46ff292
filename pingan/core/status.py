"""The statuses a load attempt can have, in one place: written into batch records, shown by `pingan status`
and `pingan quality`, and returned by the nightly job per feed.

A StrEnum: a member equals its text (`BatchStatus.COMMITTED == "committed"`), so records on disk, JSON output
and older comparisons stay as they were.
"""

from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    RUNNING = "running"  # written before a load reads anything
    COMMITTED = "committed"  # the batch is the truth for its feed and day
    BLOCKED = "blocked"  # the quality gate refused it; the day's previous commit (if any) stays
    FAILED = "failed"  # the load raised (broken source, bad spec)
    LATE = "late"  # nothing delivered for the day (no file, or no rows)
    # derived for display, never written:
    INTERRUPTED = "interrupted"  # a `running` record whose process is gone, or that a later attempt followed
    SUPERSEDED = "superseded"  # committed once, replaced by a later commit of the same day


# Attempts that leave a day without a new commit: `pingan status` lists them as problem days.
PROBLEM_STATUSES = frozenset(
    {BatchStatus.FAILED, BatchStatus.LATE, BatchStatus.BLOCKED, BatchStatus.INTERRUPTED}
)
# Attempts `pingan quality` and `pingan night` exit non-zero for.
ALARM_STATUSES = frozenset({BatchStatus.BLOCKED, BatchStatus.FAILED, BatchStatus.INTERRUPTED})


class RuleVerdict(StrEnum):
    """What one quality rule did to a batch (the `outcome` of pingan.quality.result.RuleOutcome)."""

    PASSED = "passed"
    WARNED = "warned"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"
