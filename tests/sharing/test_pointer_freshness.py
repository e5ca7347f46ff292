"""The signed `latest` pointer carries its publication time: a pull warns (one line, exit 0) when it is
older than the agreement's expected cadence, so a replayed old pointer is noticed even by a fresh copy."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import yaml
from click.testing import CliRunner

from pingan.cli.app import main
from pingan.sharing import manifest as mf
from pingan.sharing.keys import signing_key
from pingan.sharing.partner import load_profile, pull
from pingan.sharing.provision import provision
from pingan.sharing.publish import publish

TODAY = date(2025, 3, 5)
LATEST = "share/wujiang/border_incidents/" + mf.LATEST


def publish_wujiang(share_env, agreements_dir):
    settings, lake, shares = share_env
    publish(settings, lake, shares, partners=["wujiang"], as_of=date(2025, 3, 3),
            agreements_dir=agreements_dir, today=TODAY)  # fmt: skip
    provision(settings, shares, backend="none", today=TODAY, agreements_dir=agreements_dir)
    return settings.home / "partners" / "wujiang" / "pull-profile.json"


def pointer(shares) -> dict:
    return json.loads(shares.get_bytes(LATEST))


def test_a_fresh_pointer_pulls_without_warning_and_a_rerun_renews_it(share_env, agreements_dir, tmp_path):
    settings, lake, shares = share_env
    profile = publish_wujiang(share_env, agreements_dir)
    first = pointer(shares)
    assert first["expected_cadence_hours"] == 48 and "published_at" in first
    lines: list[str] = []
    pull(load_profile(profile), tmp_path / "copy", warn=lines.append)
    assert lines == []
    publish(
        settings,
        lake,
        shares,
        partners=["wujiang"],
        as_of=date(2025, 3, 3),
        agreements_dir=agreements_dir,
        today=TODAY,
    )  # fmt: skip  (nothing new: the pointer is renewed)
    renewed = pointer(shares)
    assert renewed["published_at"] > first["published_at"]
    assert (renewed["sequence"], renewed["snapshot_id"]) == (first["sequence"], first["snapshot_id"])
    pull(load_profile(profile), tmp_path / "copy", warn=lines.append)  # the renewed pointer is accepted
    assert lines == []


def test_a_replayed_old_pointer_is_noticed_by_a_fresh_copy(share_env, agreements_dir, tmp_path):
    settings, _, shares = share_env
    profile = publish_wujiang(share_env, agreements_dir)
    # the pointer as the hub signed it three days ago, served again (a replay, or a hub that stopped)
    old = mf.read_pointer(pointer(shares), LATEST)
    old = old.model_copy(update={"published_at": datetime.now(UTC) - timedelta(hours=72)})
    signer = signing_key(settings.home / "secrets", allow_generate=False)
    shares.put_bytes(LATEST, old.encode())
    shares.put_bytes(LATEST[: -len(mf.LATEST)] + mf.LATEST_SIGNATURE, mf.sign(old.encode(), signer))

    lines: list[str] = []
    pulled = pull(load_profile(profile), tmp_path / "fresh-copy", warn=lines.append)
    assert len(pulled) == 4 and len(lines) == 1, lines  # the data is still pulled and verified
    assert "border_incidents was published" in lines[0] and "72 h ago" in lines[0]
    assert "expected cadence of 48 h" in lines[0] and "cross_border_kpis" not in lines[0]

    result = CliRunner().invoke(main, ["partner", "pull", "--profile", str(profile),
                                       "--dest", str(tmp_path / "cli-copy")])  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "72 h ago" in warnings[0]


def test_the_cadence_comes_from_the_agreement(share_env, agreements_dir, tmp_path):
    path = agreements_dir / "wujiang.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["expected_cadence_hours"] = 168  # a weekly share
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    profile = publish_wujiang(share_env, agreements_dir)
    _, _, shares = share_env
    assert pointer(shares)["expected_cadence_hours"] == 168
    lines: list[str] = []
    later = datetime.now(UTC) + timedelta(hours=100)  # late for two nights, not for a week
    pull(load_profile(profile), tmp_path / "copy", warn=lines.append, now=later)
    assert lines == []
    pull(load_profile(profile), tmp_path / "copy", warn=lines.append, now=later + timedelta(hours=70))
    assert len(lines) == 1 and "expected cadence of 168 h" in lines[0]
