"""The loader's batch rules on their own: thresholds, sampling noise, declared empty days, overrides."""

from __future__ import annotations

import pytest

from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan.quality.batch_rules import EMPTY_BATCH, ROWS_ACCEPTED, judge_batch, max_rejected_share

SPEC = load_specs(PROJECT_ROOT / "connectors")["qingpu_110_incidents"]


def test_an_empty_delivery_is_blocked_unless_the_feed_declares_empty_days():
    assert [f.rule for f in judge_batch(SPEC, 0, 0, {})] == [EMPTY_BATCH]
    calm = SPEC.model_copy(update={"empty_days": {"reason": "a registry may not change on a holiday"}})
    assert judge_batch(calm, 0, 0, {}) == []


@pytest.mark.parametrize(
    ("read", "rejected", "blocked"),
    [
        (1_000_000, 50_000, False),
        (1_000_000, 60_000, True),
        (1_000_000, 500_000, True),
        (12, 1, False),
        (12, 12, True),
        (1, 1, True),
        (85, 5, False),
        (200, 7, False),
        (300, 300, True),
    ],
)
def test_rejected_share_against_the_threshold_and_its_noise(read, rejected, blocked):
    failures = judge_batch(SPEC, read, rejected, {"unparseable_timestamp": rejected})
    assert bool(failures) is blocked
    if blocked:
        assert failures[0].rule == ROWS_ACCEPTED and "unparseable_timestamp" in failures[0].cause


def test_noise_allowance_shrinks_with_batch_size():
    shares = [max_rejected_share(0.95, n) for n in (10, 100, 10_000, 1_000_000)]
    assert shares == sorted(shares, reverse=True) and shares[-1] == pytest.approx(0.05, abs=0.002)


def test_a_feed_relaxes_rows_accepted_only_with_a_reason():
    from pingan.core.feed_spec import QualityOverride

    relaxed = SPEC.model_copy(
        update={
            "quality_overrides": {
                ROWS_ACCEPTED: QualityOverride(
                    mostly=0.5, reason="pilot feed, half its rows are known to be bad"
                )
            }
        }
    )
    assert judge_batch(relaxed, 1000, 400, {}) == []
    assert judge_batch(SPEC, 1000, 400, {})
    with pytest.raises(ValueError, match="reason"):
        QualityOverride(mostly=0.5, reason="")


def test_the_gate_leaves_batch_rule_overrides_to_the_loader(suites_dir):
    from pingan.quality.suites import apply_overrides, load_suite

    suite = load_suite("incident", suites_dir)
    assert apply_overrides(suite, {ROWS_ACCEPTED: {"mostly": 0.5, "reason": "judged by the loader"}}) == suite
