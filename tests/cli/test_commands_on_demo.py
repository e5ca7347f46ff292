"""Every command a user runs after `make demo`, in text and --json form, against a real demo's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

FEEDS = 9
PINGAN = [sys.executable, "-m", "pingan.cli.app"]


def pingan(home, *args, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")} | {
        "PINGAN_HOME": str(home),
        "COLUMNS": "200",
    }
    result = subprocess.run([*PINGAN, *args], env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo")
    result = pingan(home, "demo", "--days", "2", "--scale", "0.05")
    return home, result


@pytest.mark.slow
def test_demo_prints_a_line_per_night_and_no_warning_per_row(demo):
    _, result = demo
    nights = [line for line in result.stderr.splitlines() if line.strip().startswith("2025-03-0")]
    assert len(nights) == 2 and all("feeds committed" in n for n in nights)
    assert "relationships_" not in result.stderr  # orphan references are counted once, not warned per row


@pytest.mark.slow
def test_status_text_and_json(demo):
    home, _ = demo
    text = pingan(home, "status").stdout
    assert "qingpu_110_incidents" in text and "fresh (build 2025-03-02)" in text
    data = json.loads(pingan(home, "status", "--json").stdout)
    assert len(data["feeds"]) == FEEDS and data["held_back_shares"] == []
    assert all(f["freshness"]["latest_load_date"] == "2025-03-02" for f in data["feeds"].values())


@pytest.mark.slow
def test_quality_text_and_json_show_the_orphans_once(demo):
    home, _ = demo
    text = pingan(home, "quality").stdout
    assert "qingpu_fire_alarms" in text and text.count("reference orphans:") <= 2
    data = json.loads(pingan(home, "quality", "--json").stdout)
    assert {d["feed"] for d in data["days"]} == set(
        json.loads(pingan(home, "status", "--json").stdout)["feeds"]
    )
    assert all(
        o["orphan_rows"] > 0 and o["reference_table"] == "dim_enterprise" for o in data["reference_orphans"]
    )


@pytest.mark.slow
def test_feeds_text_and_json(demo):
    home, _ = demo
    assert "wujiang_incidents" in pingan(home, "feeds").stdout
    feeds = json.loads(pingan(home, "feeds", "--json").stdout)
    assert len(feeds) == FEEDS and {f["transport"] for f in feeds} >= {"file_drop", "rest_json", "sql_table"}


@pytest.mark.slow
def test_lineage_text_and_json(demo):
    home, _ = demo
    assert "fct_incidents" in pingan(home, "lineage", "fct_incidents").stdout
    chain = json.loads(pingan(home, "lineage", "wujiang/border_incidents", "--json").stdout)
    assert "wujiang" in json.dumps(chain, ensure_ascii=False)


@pytest.mark.slow
def test_partners_audit_text_and_json(demo):
    home, _ = demo
    assert "hash chain intact" in pingan(home, "partners", "audit").stdout
    data = json.loads(pingan(home, "partners", "audit", "--json", "--last", "3").stdout)
    # 2 nights x 12 datasets (Pinghu and Jinshan no longer get border_incidents), plus other entries
    assert data["chain"] == "intact" and data["entries"] > 24 and len(data["last"]) == 3


@pytest.mark.slow
def test_report_writes_a_page(demo):
    home, _ = demo
    out = home / "report.html"
    pingan(home, "report", "--output", str(out), "--no-data-docs")
    page = out.read_text("utf-8")
    assert "qingpu_110_incidents" in page and "<svg" in page  # charts drawn as SVG, axes and values
    orphans = json.loads(pingan(home, "quality", "--json").stdout)["reference_orphans"]
    assert ("Standing findings" in page) == bool(orphans)  # repeated findings once, with their counts
    assert all(f"{o['orphan_rows']:,} rows" in page for o in orphans)
