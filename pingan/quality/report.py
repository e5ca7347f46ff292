"""`pingan report`: one static HTML page on the lake's quality, for an operator's browser.

Per feed: freshness (last committed day and when), rows committed and quarantined per day as a chart,
top quarantine rules, blocked or failed days with their cause; links to the GX Data Docs (built under
the lake) and the dbt docs (`make docs`), relative to the page when they are files, so the folder can be
moved or served as a whole. Charts are inline SVG drawn here (no script, no library, no network): a
y axis with row-count ticks, a day label under each bar and its committed (+quarantined) count above it.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlparse
from urllib.request import url2pathname

from pingan.core.settings import Settings
from pingan.core.status import BatchStatus
from pingan.core.storage import Store
from pingan.quality.overview import DayQuality, day_quality, top_rules

_STYLE = """
body{font-family:sans-serif;margin:2em;color:#222} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right} th{background:#eee} td.l{text-align:left}
.blocked{color:#c0392b} section{margin-bottom:2em} .legend span{display:inline-block;width:10px;height:10px}
svg.chart text{font:10px sans-serif;fill:#333} svg.chart .axis line{stroke:#666}
svg.chart .grid{stroke:#eee} svg.chart .value{fill:#111}
"""

_BLUE, _ORANGE, _RED = "#2e86c1", "#f39c12", "#c0392b"
_LEFT, _TOP, _BOTTOM, _BAR_SLOT, _HEIGHT = 56, 16, 34, 72, 200


def _nice_step(top: int, ticks: int = 4) -> int:
    """A 1-2-5 step so that about `ticks` steps cover `top`."""
    raw = max(1.0, top / ticks)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def chart_svg(series: list[dict]) -> str:
    """Stacked bars per day (committed, quarantined on top; a blocked day red) with both axes labelled."""
    width = _LEFT + _BAR_SLOT * max(1, len(series)) + 10
    plot_h = _HEIGHT - _TOP - _BOTTOM
    base = _TOP + plot_h
    step = _nice_step(max([d["committed"] + d["quarantined"] for d in series] + [1]))
    top = step * -(-max([d["committed"] + d["quarantined"] for d in series] + [1]) // step)

    def y(value: int) -> float:
        return base - plot_h * value / top

    parts = [
        f"<line class='grid' stroke='#eee' x1='{_LEFT}' x2='{width - 10}' y1='{y(v):.1f}' y2='{y(v):.1f}'/>"
        f"<g class='tick'><line stroke='#666' x1='{_LEFT - 4}' x2='{_LEFT}' y1='{y(v):.1f}' y2='{y(v):.1f}'/>"
        f"<text x='{_LEFT - 6}' y='{y(v) + 3:.1f}' text-anchor='end'>{v:,}</text></g>"
        for v in range(0, top + 1, step)
    ]
    y_axis = (
        f"<g class='axis y'><line stroke='#666' x1='{_LEFT}' x2='{_LEFT}' y1='{_TOP}' y2='{base}'/>{''.join(parts)}"
        f"<text x='12' y='{_TOP + plot_h / 2:.0f}' transform='rotate(-90 12 {_TOP + plot_h / 2:.0f})' "
        "text-anchor='middle'>rows</text></g>"
    )
    bars, labels = [], []
    for i, d in enumerate(series):
        x = _LEFT + i * _BAR_SLOT + 8
        committed_h = base - y(d["committed"])
        quarantined_h = base - y(d["quarantined"])
        colour = _RED if d["blocked"] else _BLUE
        value = f"{d['committed']:,}" + (f" +{d['quarantined']:,}" if d["quarantined"] else "")
        bars.append(
            f"<g class='bar' data-day='{d['day']}'><title>{d['day']}: {d['committed']:,} committed, "
            f"{d['quarantined']:,} quarantined{', not committed' if d['blocked'] else ''}</title>"
            f"<rect x='{x}' y='{base - max(committed_h, 3 if d['blocked'] else 0):.1f}' "
            f"width='{_BAR_SLOT - 16}' height='{max(committed_h, 3 if d['blocked'] else 0):.1f}' "
            f"fill='{colour}'/>"
            f"<rect x='{x}' y='{base - committed_h - quarantined_h:.1f}' width='{_BAR_SLOT - 16}' "
            f"height='{quarantined_h:.1f}' fill='{_ORANGE}'/>"
            f"<text class='value' x='{x + (_BAR_SLOT - 16) / 2:.0f}' "
            f"y='{base - committed_h - quarantined_h - 3:.1f}' text-anchor='middle'>{value}</text></g>"
        )
        labels.append(
            f"<text x='{x + (_BAR_SLOT - 16) / 2:.0f}' y='{base + 14}' text-anchor='middle'>{d['day'][5:]}</text>"
        )
    x_axis = (
        f"<g class='axis x'><line stroke='#666' x1='{_LEFT}' x2='{width - 10}' y1='{base}' y2='{base}'/>{''.join(labels)}"
        f"<text x='{(_LEFT + width) / 2:.0f}' y='{_HEIGHT - 4}' text-anchor='middle'>load day</text></g>"
    )
    return (
        f"<svg class='chart' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{_HEIGHT}' "
        f"viewBox='0 0 {width} {_HEIGHT}' font-family='sans-serif' font-size='10' role='img' aria-label='rows committed and quarantined per load day'>"
        f"{y_axis}{x_axis}{''.join(bars)}</svg>"
    )


def _feed_section(feed: str, days: list[DayQuality]) -> str:
    committed = [d for d in days if d.rows_committed]
    last = max(committed, key=lambda d: d.load_date) if committed else None
    fresh = (
        f"last committed day {last.load_date} (at {last.committed_at})" if last else "nothing committed yet"
    )
    series = [
        {
            "day": d.load_date,
            "committed": d.rows_committed,
            "quarantined": d.rows_quarantined,
            "blocked": d.status != BatchStatus.COMMITTED,
        }
        for d in days
    ]
    rules: Counter[str] = Counter()
    for d in days:
        rules.update(d.quarantine_by_rule)
    problems = "".join(
        f"<li class='blocked'>{html.escape(d.load_date)} {html.escape(d.status)}: "
        f"{html.escape(d.cause or '')}</li>"
        for d in days
        if d.status != BatchStatus.COMMITTED
    )
    rows = "".join(
        f"<tr><td class='l'>{d.load_date}</td><td class='l'>{html.escape(d.status)}</td><td>{d.rows_read:,}</td>"
        f"<td>{d.rows_committed:,}</td><td>{d.rows_quarantined:,}</td>"
        f"<td class='l'>{html.escape(top_rules(d.quarantine_by_rule))}</td></tr>"
        for d in days
    )
    return (
        f"<section id='{html.escape(feed)}'><h2>{html.escape(feed)}</h2><p>Freshness: {html.escape(fresh)}</p>"
        f"{chart_svg(series)}"
        f"<p>Top rules: {html.escape(top_rules(dict(rules), 5)) or 'none'}</p>"
        f"{'<ul>' + problems + '</ul>' if problems else ''}"
        "<table><tr><th>day</th><th>status</th><th>read</th><th>committed</th><th>quarantined</th>"
        f"<th>top rules</th></tr>{rows}</table></section>"
    )


def render_report(
    days: list[DayQuality],
    *,
    data_docs: str | None,
    dbt_docs: str | None,
    lake_url: str,
    standing: list[str] = (),
) -> str:
    """`standing`: findings that repeat every night (reference orphans), shown once with their counts."""
    feeds: dict[str, list[DayQuality]] = {}
    for d in days:
        feeds.setdefault(d.feed, []).append(d)
    blocked = [d for d in days if d.status != BatchStatus.COMMITTED]
    links = []
    if data_docs:
        links.append(f"<a href='{html.escape(data_docs)}'>Great Expectations Data Docs</a>")
    if dbt_docs:
        links.append(f"<a href='{html.escape(dbt_docs)}'>dbt docs (lineage)</a>")
    legend = (
        "<p class='legend'><span style='background:#2e86c1'></span> committed "
        "<span style='background:#f39c12'></span> quarantined "
        "<span style='background:#c0392b'></span> blocked / not committed</p>"
    )
    sections = "".join(_feed_section(f, ds) for f, ds in sorted(feeds.items()))
    if standing:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in standing)
        sections = f"<section id='standing'><h2>Standing findings</h2><ul>{items}</ul></section>" + sections
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Pingan quality</title>"
        f"<style>{_STYLE}</style></head><body><h1>Pingan data quality</h1>"
        f"<p>Lake {html.escape(lake_url)}; generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"{len(feeds)} feeds, {len(days)} feed-days, {len(blocked)} not committed.</p>"
        f"<p>{' · '.join(links) or 'No Data Docs or dbt docs built yet.'}</p>{legend}"
        f"<nav>{' '.join(f'<a href=#{html.escape(f)}>{html.escape(f)}</a>' for f in sorted(feeds))}</nav>"
        f"{sections}</body></html>"
    )


def write_report(
    settings: Settings,
    lake: Store,
    output: Path | None = None,
    *,
    build_docs: bool = True,
    standing: list[str] = (),
) -> Path:
    """Write the page (default $PINGAN_HOME/report/index.html) and return its path."""
    output = output or settings.home / "report" / "index.html"
    data_docs = None
    if build_docs:
        from pingan.quality.data_docs import build_data_docs

        key = build_data_docs(lake, settings.expectations_dir)
        data_docs = _link(lake.presigned_get(key), output) if key else None
    dbt_index = settings.home / "dbt-docs" / "index.html"
    page = render_report(
        day_quality(lake),
        data_docs=data_docs,
        dbt_docs=_link(dbt_index.as_uri(), output) if dbt_index.exists() else None,
        lake_url=lake.url,
        standing=list(standing),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    return output


def _link(url: str, page: Path) -> str:
    """A file:// address as a path relative to the page's folder (the folders move or are served
    together); an S3 store's pre-signed http(s) address stays as it is."""
    if not url.startswith("file://"):
        return url
    target = Path(url2pathname(urlparse(url).path))
    return quote(Path(os.path.relpath(target, page.resolve().parent)).as_posix())
