"""Deliveries that parse but are wrong, loaded over a good day after a week of history: each is blocked by
the feed's profile with the check, the expected range and the observed value, and the good day stays."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pingan import raw_zone
from pingan.cli.app import main
from pingan.core import audit
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed
from pingan.orchestration.pipeline import sources_for
from pingan_sim.delivery_faults import PROFILE_FAULTS, NotApplicable, deliver_fault

pytestmark = pytest.mark.slow
START, DAYS = date(2025, 3, 3), 9
DAY = START + timedelta(days=DAYS - 1)
SPECS = load_specs(PROJECT_ROOT / "connectors")
FEEDS = ["qingpu_110_incidents", "jiashan_incidents", "wujiang_incidents"]
EXPECTED_CHECK = {
    "truncated_half": "profile_volume",
    "rows_cut_90": "profile_volume",
    "stale_redelivery": "profile_repeat",
}


@pytest.fixture(scope="module")
def history_home(tmp_path_factory) -> Path:
    """Nine simulated days; eight loaded (the history), the ninth loaded good."""
    from pingan_sim import simulate

    home = tmp_path_factory.mktemp("profile")
    landing = Store(f"file://{home / 'sim'}")
    landing.ensure()
    simulate(home, landing, START, DAY, seed=9, scale=0.1, defect_rate=0.0)
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, home)
        settings = load_settings()
        lake = Store(settings.lake_url)
        lake.ensure()
        for feed in FEEDS:
            with sources_for(settings, [feed]):
                for i in range(DAYS):
                    result = ingest_feed(SPECS[feed], START + timedelta(days=i), settings, lake)
                    assert result.status == "committed", result.manifest.get("error")
    return home


def _isolate(mp, home: Path) -> None:
    mp.setenv("PINGAN_HOME", str(home))
    for var in ("PINGAN_LAKE_URL", "PINGAN_LANDING_URL", "PINGAN_S3_ENDPOINT", "PINGAN_PINGHU_JINSHAN_URL"):
        mp.delenv(var, raising=False)


@pytest.fixture
def home(history_home, tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    shutil.copytree(history_home, home)
    _isolate(monkeypatch, home)
    return home


@pytest.mark.parametrize(("feed", "kind"), [(f, k) for f in FEEDS for k in PROFILE_FAULTS])
def test_a_wrong_delivery_is_blocked_and_the_good_day_stays(home, feed, kind):
    settings = load_settings()
    lake, spec = Store(settings.lake_url), SPECS[feed]
    good = raw_zone.committed_manifest(lake, feed, DAY)
    try:
        deliver_fault(home, Store(settings.landing_url), spec, DAY, kind)
    except NotApplicable as exc:
        pytest.skip(str(exc))
    with sources_for(settings, [feed]):
        result = ingest_feed(spec, DAY, settings, lake)
    cause = result.manifest.get("error") or ""
    assert result.status == "blocked", f"{kind} committed: {result.manifest.get('rows_written')} rows"
    assert any(check in cause for check in EXPECTED_CHECK[kind]), cause
    assert "expected" in cause and "observed" in cause, cause
    assert f"{feed} {DAY}" in cause
    if kind == "stale_redelivery":
        assert str(DAY - timedelta(days=1)) in cause  # names the day it repeats
    assert raw_zone.committed_manifest(lake, feed, DAY)["batch_id"] == good["batch_id"]  # the good day stays


def test_an_operator_accepts_an_unusual_day_on_purpose(home):
    settings = load_settings()
    lake, feed = Store(settings.lake_url), "jiashan_incidents"
    deliver_fault(home, Store(settings.landing_url), SPECS[feed], DAY, "rows_cut_90")
    with sources_for(settings, [feed]):
        assert ingest_feed(SPECS[feed], DAY, settings, lake).status == "blocked"
        why = "the partner's system was down half the day; confirmed by phone"
        cli = CliRunner().invoke(main, ["accept", "--feed", feed, "--date", str(DAY), "--reason", why])
        assert cli.exit_code == 0, cli.output
        result = ingest_feed(SPECS[feed], DAY, settings, lake)
    assert result.status == "committed"
    assert result.manifest["quality"]["warnings"].get("profile_volume") == 1
    accepted = [e for e in audit.entries(Store(settings.share_url)) if e["event"] == "delivery_accepted"]
    assert accepted and accepted[-1]["detail"]["reason"] == why
