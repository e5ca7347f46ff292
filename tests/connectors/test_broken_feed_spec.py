"""One bad feed file fails that feed, naming the file and the key, and the others run; an empty day reads
the same whatever the transport (issue 21)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from pingan.cli.app import main
from pingan.core.feed_spec import SpecError, load_spec_set, load_specs
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store, lake_store
from pingan.ops.status import collect_status
from pingan.orchestration.pipeline import ingest_day
from pingan.quality.overview import day_quality

DAY = date(2025, 3, 1)
BROKEN = "qingpu_grid_events"


@pytest.fixture
def broken_connectors(tmp_path, monkeypatch):
    """The repository's feed specs with one unknown key in the Qingpu grid feed."""
    target = tmp_path / "connectors"
    shutil.copytree(PROJECT_ROOT / "connectors", target)
    path = target / "grid_events" / "qingpu.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\nretention_dayz: 30\n", encoding="utf-8")
    monkeypatch.setenv("PINGAN_CONNECTORS_DIR", str(target))
    return path


def test_a_broken_file_fails_its_feed_only(broken_connectors):
    found = load_spec_set(broken_connectors.parents[1])
    (broken,) = found.broken
    assert broken.feed == BROKEN and broken.path == str(broken_connectors)
    assert f"{broken_connectors}: retention_dayz: unknown key" in broken.error
    assert len(found.specs) == len(load_specs(PROJECT_ROOT / "connectors")) - 1 and BROKEN not in found.specs
    with pytest.raises(SpecError, match="retention_dayz: unknown key"):  # the build still needs every feed
        load_specs(broken_connectors.parents[1])


@pytest.mark.slow
def test_the_other_feeds_load_and_status_names_the_file(home, broken_connectors):
    from pingan_sim import simulate

    settings = load_settings()
    simulate(settings.home, Store(settings.landing_url), DAY, DAY, seed=3, scale=0.05, defect_rate=0.0)
    outcomes = {o.feed: o for o in ingest_day(settings, DAY, feeds=["jiashan_incidents", BROKEN], gate=False)}
    assert outcomes["jiashan_incidents"].status == "committed"
    assert outcomes[BROKEN].status == "failed"
    assert str(broken_connectors) in outcomes[BROKEN].error and "retention_dayz" in outcomes[BROKEN].error

    data = collect_status(settings, lake_store(settings))
    assert [b["feed"] for b in data["broken_specs"]] == [BROKEN]
    status = CliRunner().invoke(main, ["status"])
    assert status.exit_code == 0, status.output
    assert "feed spec does not load" in status.output and "retention_dayz" in status.output


@pytest.mark.slow
def test_an_empty_day_reads_late_for_a_file_and_for_an_api(home):
    from pingan_sim import simulate

    settings = load_settings()
    simulate(settings.home, Store(settings.landing_url), DAY, DAY, seed=3, scale=0.05, defect_rate=0.0)
    feeds = ["jiashan_incidents", "qingpu_fire_alarms"]
    ingest_day(settings, DAY, feeds=feeds, gate=False)  # the API's cursor now stands after the simulated day
    empty = DAY + timedelta(days=1)  # nothing simulated: no file, and no new rows from the API
    outcomes = {o.feed: o for o in ingest_day(settings, empty, feeds=feeds, gate=False)}
    assert {f: o.status for f, o in outcomes.items()} == {f: "late" for f in feeds}
    assert all("nothing delivered for this day" in o.error for o in outcomes.values())

    data = collect_status(settings, lake_store(settings))
    days = {f: data["feeds"][f]["problem_days"][empty.isoformat()]["status"] for f in feeds}
    assert days == {f: "late" for f in feeds}
    assert data["feeds"]["qingpu_fire_alarms"]["blocked_days"] == []
    quality = {
        d.feed: d.status for d in day_quality(lake_store(settings)) if d.load_date == empty.isoformat()
    }
    assert quality == {f: "late" for f in feeds}  # `pingan quality` and the report say the same
