"""`pingan quality`, the stored results (raw.quality_results, Data Docs) and `pingan report` in a real
headless browser (Debian's chromium)."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote

import duckdb
import pytest
from click.testing import CliRunner

from pingan.cli.app import main
from pingan.core.storage import Store
from pingan.quality.results_table import quality_status_of_batches, register_quality_results

DAY = date(2025, 3, 1)
HEADER = "接警编号,报警时间,警情类别代码,所属镇街"


def _qingpu(home, when: str = "2025-03-01 08:00:00") -> None:
    path = home / "sim" / "qingpu" / "110" / f"110接处警_{DAY:%Y%m%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] + [f"Q{i:04d},{when},010100,金泽镇" for i in range(50)]
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))


@pytest.fixture
def loaded(home):
    runner = CliRunner()
    _qingpu(home)
    good = runner.invoke(main, ["ingest", "--date", DAY.isoformat(), "--feed", "qingpu_110_incidents"])
    assert good.exit_code == 0, good.output
    _qingpu(home, when="01.03.2025 08h00")  # every timestamp in another format
    bad = runner.invoke(main, ["ingest", "--date", DAY.isoformat(), "--feed", "qingpu_110_incidents"])
    assert bad.exit_code == 1, bad.output
    return home


def test_quality_shows_the_blocked_day_with_its_cause(loaded):
    result = CliRunner().invoke(main, ["quality", "--feed", "qingpu_110_incidents", "--since", "2025-03-01"])
    assert result.exit_code == 1, result.output
    assert "blocked" in result.output and "unparseable_timestamp" in result.output
    assert re.search(
        r"qingpu_110_incidents 2025-03-01 blocked: rows_accepted: .*100% of 50 rows", result.output
    )
    assert re.search(r"│\s+50\s+│\s+50\s+│\s+50\s+│", result.output), (
        "read 50, committed 50 (the good load), 50 rejected"
    )


def test_results_land_in_a_table_and_share_manifests_can_quote_them(loaded, settings):
    lake = Store(settings.lake_url)
    con = duckdb.connect()
    assert register_quality_results(con, lake) > 0
    rows = con.execute(
        "select status, is_current, stage, rule, outcome, rows_failed from raw.quality_results "
        "where stage = 'batch'"
    ).fetchall()
    assert rows == [("blocked", False, "batch", "rows_accepted", "rejected", 50)]
    current = con.execute("select distinct batch_id from raw.quality_results where is_current").fetchall()
    (batch_id,) = current[0]
    status = quality_status_of_batches(lake, [batch_id, "nope"])
    assert status[batch_id]["status"] == "committed" and status[batch_id]["rows_written"] == 50
    assert status["nope"] == {"status": "unknown"}


def test_report_links_are_relative_and_its_charts_have_axes_and_values(loaded, settings):
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 0, result.output
    text = (settings.home / "report" / "index.html").read_text("utf-8")
    assert not re.findall(r"(?:href|src)=['\"]?(?:file:|/)", text), "no absolute link"
    assert "href='../lake/_quality/data_docs/index.html'" in text
    svg = re.search(r"<svg class='chart'.*?</svg>", text).group(0)
    assert re.search(r"<g class='axis y'>", svg) and re.search(r"<g class='axis x'>", svg)
    ticks = [int(t.replace(",", "")) for t in re.findall(r"text-anchor='end'>([\d,]+)</text>", svg)]
    assert ticks[0] == 0 and len(ticks) >= 3 and ticks[-1] >= 50, ticks
    assert ">03-01</text>" in svg, "the day under its bar"
    assert "text-anchor='middle'>50 +50</text>" in svg, "the bar's committed +quarantined counts above it"


def test_chart_ticks_cover_the_tallest_bar_in_round_steps():
    from pingan.quality.report import chart_svg

    series = [
        {"day": "2025-03-01", "committed": 9_800, "quarantined": 120, "blocked": False},
        {"day": "2025-03-02", "committed": 0, "quarantined": 50, "blocked": True},
    ]
    svg = chart_svg(series)
    ticks = [int(t.replace(",", "")) for t in re.findall(r"text-anchor='end'>([\d,]+)</text>", svg)]
    assert ticks == [0, 5_000, 10_000]
    assert ">9,800 +120</text>" in svg and ">0 +50</text>" in svg
    assert "fill='#c0392b'" in svg, "a blocked day is drawn red"


@pytest.mark.slow
def test_report_and_data_docs_render_offline_in_headless_chromium(loaded, settings, tmp_path):
    """The report and the Data Docs it links, served from 127.0.0.1 with every other address blocked:
    nothing outside is even requested, the vendored CSS and JS take effect, the charts have their axes."""
    from offline_browser import OfflineBrowser, chromium_path

    if chromium_path() is None:
        pytest.skip("chromium is not installed (make test installs it with apt-get when apt is available)")
    (settings.home / "dbt-docs").mkdir()
    (settings.home / "dbt-docs" / "index.html").write_text("<title>dbt docs</title>", encoding="utf-8")
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 0, result.output

    with OfflineBrowser(settings.home, tmp_path) as browser:
        report = browser.open("report/index.html")
        assert report.outside_requests == []
        chart = browser.evaluate(CHART_PROBE)
        assert chart["charts"] == 1
        assert chart["yTicks"][0] == "0" and len(chart["yTicks"]) >= 3, chart
        assert chart["xLabels"] == ["03-01"] and chart["values"] == ["50 +50"], chart
        assert chart["minTextWidth"] > 0, "every axis label is laid out with a width"
        links = browser.evaluate(
            "[...document.querySelectorAll('a[href]')].filter(a => !a.getAttribute('href').startsWith('#'))"
            ".map(a => [a.getAttribute('href'), new URL(a.href).pathname])"
        )
        assert [h for h, _ in links] == ["../lake/_quality/data_docs/index.html", "../dbt-docs/index.html"]
        docs_path = links[0][1].lstrip("/")

        index = browser.open(docs_path)
        assert index.outside_requests == [], index.outside_requests
        assert any("/static/vendor/bootstrap-4.3.1/" in u for u in index.local_requests)
        styled = browser.evaluate(DATA_DOCS_PROBE)
        assert styled["broken"] == [], styled["broken"]
        assert styled["navbarDisplay"] == "flex", "Bootstrap's stylesheet applies"
        assert styled["scripts"] == {"jQuery": True, "bootstrapTable": True, "vegaEmbed": True}
        assert styled["tablesBuilt"] > 0, "bootstrap-table's script built its table wrappers"
        assert styled["logoWidth"] > 0, "GX's logo loads from the site"
        assert styled["iconFont"], "Font Awesome's web font loaded"
        site = settings.home / "lake" / "_quality" / "data_docs"
        others = sorted(p for p in site.rglob("*.html") if p.name != "index.html" or p.parent != site)
        assert {p.relative_to(site).parts[0] for p in others} == {"expectations", "validations"}
        for other in others:  # the suite's page and each validation's page, deeper in the site
            page = browser.open(quote(other.relative_to(settings.home).as_posix()))
            assert page.outside_requests == [], (other, page.outside_requests)
            probe = browser.evaluate(DATA_DOCS_PROBE)
            assert probe["navbarDisplay"] == "flex" and probe["broken"] == [], (other, probe)
            assert probe["logoWidth"] > 0 and probe["scripts"]["jQuery"], (other, probe)


CHART_PROBE = """(() => {
  const svgs = [...document.querySelectorAll('svg.chart')];
  const texts = sel => svgs.flatMap(s => [...s.querySelectorAll(sel)]);
  const all = texts('.axis text, .value');
  return {
    charts: svgs.length,
    yTicks: texts('.axis.y .tick text').map(t => t.textContent),
    xLabels: texts('.axis.x > text').map(t => t.textContent).filter(t => t !== 'load day'),
    values: texts('.value').map(t => t.textContent),
    minTextWidth: Math.min(...all.map(t => t.getBBox().width)),
  };
})()"""

DATA_DOCS_PROBE = """(async () => {
  await document.fonts.ready;
  const logo = document.querySelector('.navbar-brand img');
  return {
    broken: performance.getEntriesByType('resource')
      .filter(e => e.responseStatus && e.responseStatus >= 400).map(e => e.name),
    navbarDisplay: getComputedStyle(document.querySelector('nav.navbar')).display,
    scripts: {jQuery: typeof window.jQuery === 'function',
              bootstrapTable: !!(window.jQuery && jQuery.fn.bootstrapTable),
              vegaEmbed: typeof window.vegaEmbed === 'function'},
    tablesBuilt: document.querySelectorAll('.bootstrap-table').length,
    logoWidth: logo ? logo.naturalWidth : 0,
    iconFont: document.fonts.check('900 16px "Font Awesome 6 Free"')
      && [...document.fonts].some(f => f.family.includes('Font Awesome') && f.status === 'loaded'),
  };
})()"""
