"""What a publication may claim: logical dates only, never past the committed data, never from an empty lake,
never a grant no feed fills; a pointer advanced wrongly is corrected with an audited command (issue 21)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import yaml
from click.testing import CliRunner
from share_fixtures import AS_OF

from pingan import raw_zone
from pingan.cli.app import main
from pingan.core import audit
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan.raw_zone.manifest import Manifest
from pingan.sharing.agreements import load_agreements
from pingan.sharing.partner import load_profile, pull
from pingan.sharing.publish import NothingToPublish, publish
from pingan.sharing.sources import unfilled_grants

TODAY = date(2025, 3, 3)
POINTER = "share/wujiang/border_incidents/latest.json"


def commit_day(lake, day: date, feed: str = "jiashan_incidents") -> None:
    """A committed batch record for `day`, as a load leaves it (the lake's newest logical date)."""
    raw_zone.commit(
        lake,
        Manifest(feed=feed, entity="incident", jurisdiction_code="330421", load_date=day,
                 batch_id=f"{day:%Y%m%d}-000000-abcdef", status="committed"),
    )  # fmt: skip


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_agreements_grant_only_what_some_feed_fills():
    unfilled = unfilled_grants(
        load_agreements(PROJECT_ROOT / "agreements"), load_specs(PROJECT_ROOT / "connectors")
    )
    assert [u.describe() for u in unfilled] == []


def test_a_grant_no_feed_fills_is_refused_naming_the_file_and_dataset(share_env, agreements_dir):
    settings, lake, shares = share_env
    path = agreements_dir / "pinghu.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    wujiang = yaml.safe_load((agreements_dir / "wujiang.yaml").read_text(encoding="utf-8"))
    grant = wujiang["datasets"]["border_incidents"]
    grant["row_filter"] = [{"column": "jurisdiction_code", "in": ["330482", "310116"]}]
    data["datasets"]["border_incidents"] = grant
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    with pytest.raises(
        NothingToPublish, match=rf"{path}: dataset border_incidents: no feed .* 310116, 330482"
    ):
        publish(settings, lake, shares, as_of=AS_OF, agreements_dir=agreements_dir, today=TODAY)
    assert shares.list("share/") == []  # nothing published, for any partner


def test_an_empty_lake_builds_and_publishes_nothing_and_says_why(share_env, agreements_dir, monkeypatch):
    settings, lake, shares = share_env
    monkeypatch.setenv("PINGAN_AGREEMENTS_DIR", str(agreements_dir))
    published = cli("publish", "--date", str(AS_OF))
    assert published.exit_code == 1 and "holds no committed batch: nothing to publish" in published.output
    assert shares.list("share/") == []
    built = cli("build")
    assert built.exit_code == 1 and "holds no committed batch: nothing to build" in built.output


def test_publish_never_claims_a_day_past_the_committed_data(share_env, agreements_dir, monkeypatch):
    settings, lake, shares = share_env
    monkeypatch.setenv("PINGAN_AGREEMENTS_DIR", str(agreements_dir))
    commit_day(lake, AS_OF)
    beyond = cli("publish", "--date", str(AS_OF + timedelta(days=1)), "--partner", "wujiang")
    assert beyond.exit_code == 1, beyond.output
    assert f"after the newest committed data ({AS_OF})" in beyond.output
    assert shares.list("share/") == []
    default = cli("publish", "--partner", "wujiang")  # no --date: the newest logical date, not the clock
    assert default.exit_code == 0, default.output
    assert f"published as of {AS_OF}" in default.output
    assert json.loads(shares.get_bytes(POINTER))["as_of"] == AS_OF.isoformat()


def test_a_wrongly_advanced_pointer_is_corrected_with_an_audited_command(
    share_env, agreements_dir, monkeypatch, tmp_path
):
    settings, lake, shares = share_env
    monkeypatch.setenv("PINGAN_AGREEMENTS_DIR", str(agreements_dir))
    commit_day(lake, AS_OF)
    assert cli("partners", "provision", "--backend", "none").exit_code == 0
    profile = load_profile(settings.home / "partners" / "wujiang" / "pull-profile.json")
    # what the wall clock did before: a deadline run published "as of" the real day, past the data
    wrong = date(2026, 12, 3)
    publish(settings, lake, shares, partners=["wujiang"], as_of=wrong, agreements_dir=agreements_dir)
    pull(profile, tmp_path / "copy", ["border_incidents"])  # the partner has seen the wrong pointer
    right = cli("publish", "--date", str(AS_OF), "--partner", "wujiang")
    assert right.exit_code == 0, right.output
    assert json.loads(shares.get_bytes(POINTER))["as_of"] == wrong.isoformat()  # refused as older

    fixed = cli("partners", "repoint", "--partner", "wujiang", "--dataset", "border_incidents",
                "--as-of", str(AS_OF), "--reason", "deadline run published as of the wall-clock date")  # fmt: skip
    assert fixed.exit_code == 0, fixed.output
    pointer = json.loads(shares.get_bytes(POINTER))
    assert pointer["as_of"] == AS_OF.isoformat() and pointer["correction"]["replaces"].startswith("20261203-")
    entry = audit.entries(shares)[-1]
    assert entry["event"] == "pointer_corrected" and entry["dataset"] == "border_incidents"
    assert (
        entry["detail"]["replaced_as_of"] == wrong.isoformat() and "wall-clock" in entry["detail"]["reason"]
    )
    assert audit.verify_chain(shares) == len(audit.entries(shares))
    # the partner that saw the wrong pointer takes the signed correction; its as-of steps back
    (snap,) = pull(profile, tmp_path / "copy", ["border_incidents"])
    assert snap.as_of == AS_OF.isoformat()

    again = cli("partners", "repoint", "--partner", "wujiang", "--dataset", "border_incidents",
                "--as-of", str(AS_OF), "--reason", "twice")  # fmt: skip
    assert again.exit_code == 1 and "already points at" in again.output
    past = cli("partners", "repoint", "--partner", "wujiang", "--dataset", "border_incidents",
               "--as-of", str(wrong), "--reason", "x")  # fmt: skip
    assert past.exit_code == 1 and "after the newest committed data" in past.output


def test_the_lake_check_takes_a_day_a_feed_committed_or_one_before_the_newest(share_env, agreements_dir):
    """The nightly check looks for the as-of day's own commits first (a few reads), then at every committed
    day: a day that no feed committed itself, before the newest, is still a day the lake holds."""
    settings, lake, shares = share_env
    commit_day(lake, AS_OF)
    kwargs = {"partners": ["wujiang"], "agreements_dir": agreements_dir, "today": TODAY, "check_lake": True}
    with pytest.raises(NothingToPublish, match=rf"after the newest committed data \({AS_OF}\)"):
        publish(settings, lake, shares, as_of=AS_OF + timedelta(days=1), **kwargs)
    assert shares.list("share/") == []
    assert publish(settings, lake, shares, as_of=AS_OF - timedelta(days=1), **kwargs)
    assert publish(settings, lake, shares, as_of=AS_OF, **kwargs)
    assert json.loads(shares.get_bytes(POINTER))["as_of"] == AS_OF.isoformat()
