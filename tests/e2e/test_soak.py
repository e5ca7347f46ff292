"""The 30-night soak (the 90-night form is `make soak`): the night holds, night after night."""

from __future__ import annotations

from datetime import date

import pytest

from pingan.core.settings import load_settings
from pingan_sim.soak import run_soak

NIGHTS = 30


@pytest.mark.slow
@pytest.mark.timeout(3000)  # about 7 minutes alone; far longer on a machine shared with other runs
def test_thirty_nights_with_faults_hold(tmp_path, monkeypatch):
    monkeypatch.setenv("PINGAN_HOME", str(tmp_path))
    for var in ("PINGAN_LAKE_URL", "PINGAN_LANDING_URL", "PINGAN_S3_ENDPOINT", "PINGAN_SHARE_URL"):
        monkeypatch.delenv(var, raising=False)
    lines: list[str] = []
    report = run_soak(
        load_settings(), date(2025, 1, 1), NIGHTS, seed=11, scale=0.03, fault_every=8, say=lines.append
    )
    summary = "\n".join(lines + report.summary())
    assert len(report.nights) == NIGHTS and all(n.completed for n in report.nights), summary
    assert len(report.faults) >= 3, summary  # whole-delivery and row faults were planted
    assert sum(len(n.blocked_feeds) for n in report.nights) >= 2, summary  # and the batch faults blocked
    assert report.false_blocks == [], summary
    assert report.missed_defects == [] and report.defects_caught > 50, summary
    assert report.warehouse_differences == {}, summary
    assert report.non_monotone_shares == [], summary
    # the simulator's cross-border double reports: each counted once, no other pair taken for one
    assert report.double_report_errors == [] and report.double_reports_counted >= 3, summary
    assert report.ok, summary
