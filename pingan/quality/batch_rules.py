"""The loader's batch rules: a bad delivery never replaces a good day.

Row-level expectations judge the rows GX sees; these judge the whole delivery, counting rows rejected at
every stage (reader, normaliser, de-duplication, gate). Two rules, both critical:

- `empty_batch`: nothing was read. Critical unless the feed declares `empty_days` with a reason
  (e.g. a registry that may have no change on a holiday).
- `rows_accepted`: the share of rows rejected exceeds `1 - mostly` (default mostly 0.95, the suites'
  own threshold) by more than sampling noise: three standard errors of that share for the batch's size,
  so a 12-row day with one bad row is not blocked while a million-row file half in a new format is (and
  so is any batch with every row rejected). A feed may relax it with
  `quality_overrides: {rows_accepted: {mostly, reason}}`.

A batch failing either is blocked: it commits nothing, the day's previous commit stays the truth, and the
batch record says why in one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pingan.core.status import BatchStatus

EMPTY_BATCH = "empty_batch"
ROWS_ACCEPTED = "rows_accepted"
BATCH_RULES = (EMPTY_BATCH, ROWS_ACCEPTED)  # checked here, not in a GX suite
DEFAULT_MOSTLY = 0.95


# One word for a day whose source gave nothing, whatever the transport (no file, an API or a table with no
# rows): `late`. Not committed, the day stays due (freshness flags it); a feed whose empty days are normal
# declares `empty_days` and such a day commits with 0 rows instead. Status and the CLI use these two.
NOTHING_DELIVERED = "nothing delivered for this day yet; not committed, the day stays due"


def nothing_delivered(status: str, rows_read: int, critical: list[str], *, held: bool) -> bool:
    """A blocked attempt whose only fault is that it read nothing, over a day holding no committed rows
    (`held`): an empty day, reported as `late` (an empty delivery over a good day stays `blocked`)."""
    return status == BatchStatus.BLOCKED and rows_read == 0 and list(critical) == [EMPTY_BATCH] and not held


@dataclass(frozen=True)
class BatchFailure:
    rule: str
    cause: str  # one line an operator can act on


def accepted_threshold(spec) -> float:
    """The feed's `mostly` for rows_accepted: its override if it has one, else the default."""
    override = (spec.quality_overrides or {}).get(ROWS_ACCEPTED)
    return float(override.mostly) if override is not None else DEFAULT_MOSTLY


def max_rejected_share(mostly: float, rows: int) -> float:
    """The rejected share a batch of `rows` may show before it is blocked: 1 - mostly plus 3 standard errors."""
    p = 1 - mostly
    return min(1.0, p + 3 * math.sqrt(max(p * (1 - p), 0.0025) / rows)) if p < 1 else 1.0


def judge_batch(
    spec, rows_read: int, rows_quarantined: int, by_rule: Mapping[str, int]
) -> list[BatchFailure]:
    """The batch rules this delivery fails (empty when it may be committed)."""
    if rows_read == 0:
        if spec.empty_days is not None:
            return []
        return [
            BatchFailure(
                EMPTY_BATCH,
                f"{spec.feed}: the delivery holds no rows (feed does not declare "
                "empty_days); the previous commit of the day stays",
            )
        ]
    mostly = accepted_threshold(spec)
    share = rows_quarantined / rows_read
    allowed = max_rejected_share(mostly, rows_read)
    if share <= allowed:
        return []
    top = sorted(by_rule.items(), key=lambda kv: -kv[1])[:3]
    rules = ", ".join(f"{rule} {n:,}" for rule, n in top)
    return [
        BatchFailure(
            ROWS_ACCEPTED,
            f"{spec.feed}: {share:.0%} of {rows_read:,} rows rejected ({rules}); "
            f"the feed allows {1 - mostly:.0%} (+ noise: {allowed:.0%} at this size)",
        )
    ]
