"""`pingan report`: one static HTML page on the lake's quality, for an operator's browser.

Per feed: freshness (last committed day and when), rows committed and quarantined per day as a chart,
top quarantine rules, blocked or failed days with their cause; links to the GX Data Docs (built under
the lake) and the dbt docs (`make docs`). Charts are drawn by a few lines of inline JavaScript on
<canvas> from data embedded in the page: no network, no library. Each chart records how many bars it
drew and how many pixels it inked (`data-bars`, `data-ink`), which the browser test reads back.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pingan.core.settings import Settings
from pingan.core.storage import Store
from pingan.quality.overview import DayQuality, day_quality, top_rules

_SCRIPT = """
const charts = document.querySelectorAll('canvas[data-series]');
let drawn = 0;
charts.forEach(c => {
  const s = JSON.parse(c.dataset.series), ctx = c.getContext('2d');
  const max = Math.max(1, ...s.map(d => d.committed + d.quarantined));
  const w = c.width / Math.max(1, s.length), h = c.height - 18;
  let bars = 0;
  s.forEach((d, i) => {
    const hc = h * d.committed / max, hq = h * d.quarantined / max;
    ctx.fillStyle = d.blocked ? '#c0392b' : '#2e86c1';
    ctx.fillRect(i * w + 2, h - hc, w - 4, Math.max(hc, d.blocked ? 3 : 0));
    ctx.fillStyle = '#f39c12';
    ctx.fillRect(i * w + 2, h - hc - hq, w - 4, hq);
    ctx.fillStyle = '#333'; ctx.font = '10px sans-serif';
    ctx.fillText(d.day.slice(5), i * w + 2, c.height - 4);
    bars += 1;
  });
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
  c.dataset.bars = bars; c.dataset.ink = ink;
  if (bars) drawn++;
});
document.body.dataset.chartsDrawn = drawn;
"""

_STYLE = """
body{font-family:sans-serif;margin:2em;color:#222} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right} th{background:#eee} td.l{text-align:left}
.blocked{color:#c0392b} section{margin-bottom:2em} .legend span{display:inline-block;width:10px;height:10px}
"""


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
            "blocked": d.status != "committed",
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
        if d.status != "committed"
    )
    rows = "".join(
        f"<tr><td class='l'>{d.load_date}</td><td class='l'>{html.escape(d.status)}</td><td>{d.rows_read:,}</td>"
        f"<td>{d.rows_committed:,}</td><td>{d.rows_quarantined:,}</td>"
        f"<td class='l'>{html.escape(top_rules(d.quarantine_by_rule))}</td></tr>"
        for d in days
    )
    return (
        f"<section id='{html.escape(feed)}'><h2>{html.escape(feed)}</h2><p>Freshness: {html.escape(fresh)}</p>"
        f"<canvas width='{max(240, 60 * len(days))}' height='160' "
        f"data-series='{html.escape(json.dumps(series))}'></canvas>"
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
    blocked = [d for d in days if d.status != "committed"]
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
        f"{sections}<script>{_SCRIPT}</script></body></html>"
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
        data_docs = lake.presigned_get(key) if key else None
    dbt_index = settings.home / "dbt-docs" / "index.html"
    page = render_report(
        day_quality(lake),
        data_docs=data_docs,
        dbt_docs=dbt_index.as_uri() if dbt_index.exists() else None,
        lake_url=lake.url,
        standing=list(standing),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    return output
