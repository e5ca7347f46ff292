"""The simulated source systems: every feed of docs/source_systems.md in its native format.

`simulate()` writes a date range of each jurisdiction's exports under $PINGAN_HOME/sim (Wujiang's uploads
into the landing store), injects defects at about `defect_rate` of the records of every feed, lists each
one in sim/defects.jsonl, lists the cross-border double reports it planted (valid records, not defects) in
sim/double_reports.jsonl, and counts what it generated in sim/_summary.json. The same seed and arguments
give the same bytes (the SQLite file: the same table content). `servers.SourceServers` serves the REST
and HTTP feeds from these files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from pingan.core.storage import Store
from pingan_sim import double_reports, fire, grid_events, incidents, joint_operations, registry
from pingan_sim.context import RunContext, feed_offset
from pingan_sim.reference import load_reference

FEEDS = (
    "qingpu_110_incidents",
    "qingpu_tax_registry",
    "qingpu_fire_inspections",
    "qingpu_fire_alarms",
    "qingpu_grid_events",
    "wujiang_incidents",
    "jiashan_incidents",
    "jiashan_grid_events",
    "pinghu_jinshan_joint_operations",
)
# Text files an interrupted transfer can cut short; one of them, on one day, is truncated per run.
TRUNCATABLE = ("qingpu_110_incidents", "wujiang_incidents", "jiashan_incidents", "qingpu_grid_events")

__all__ = ["FEEDS", "simulate"]


def _truncation(seed: int, start: date, end: date) -> tuple[str, date]:
    rng = np.random.default_rng([seed, feed_offset("truncated_file"), start.toordinal(), end.toordinal()])
    feed = TRUNCATABLE[int(rng.integers(len(TRUNCATABLE)))]
    return feed, date.fromordinal(start.toordinal() + int(rng.integers((end - start).days + 1)))


def simulate(
    home: Path,
    landing: Store,
    start: date,
    end: date,
    *,
    seed: int = 42,
    scale: float = 1.0,
    defect_rate: float = 0.01,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Simulate every feed for each day in [start, end]; returns the records generated per feed id.

    Counts are before defects (duplicated deliveries are not counted again; they are in
    sim/_summary.json). For the tax registry the count is its enterprises (the table has a row per enterprise
    and one per later change: registry.py).
    Days outside [start, end] that an earlier run wrote keep their files and ledger entries.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if scale <= 0:
        raise ValueError("scale must be positive")
    if not 0 <= defect_rate <= 1:
        raise ValueError("defect_rate must be between 0 and 1")
    ctx = RunContext(
        home=Path(home),
        landing=landing,
        ref=load_reference(),
        start=start,
        end=end,
        seed=seed,
        scale=scale,
        defect_rate=defect_rate,
        progress=progress,
        truncate=_truncation(seed, start, end) if defect_rate > 0 else None,
    )
    ctx.say(f"simulating {start} .. {end}: seed {seed}, scale {scale}, defect rate {defect_rate}")
    incidents.run(ctx)
    population = registry.run(ctx)
    fire.run(ctx, population)
    grid_events.run(ctx)
    joint_operations.run(ctx)

    def rerun(entry: dict) -> bool:
        return start.isoformat() <= entry["date"] <= end.isoformat()

    ctx.ledger.write(ctx.sim / "defects.jsonl", rerun)
    double_reports.write_ledger(ctx.sim / double_reports.LEDGER, ctx.double_reports, rerun)
    _write_summary(ctx)
    totals = {feed: sum(ctx.rows.get(feed, {}).values()) for feed in FEEDS}
    totals[registry.FEED] = ctx.extra[registry.FEED]["enterprises"]
    ctx.say(f"done: {sum(totals.values()):,} records, {len(ctx.ledger.entries):,} defects injected")
    return totals


def _write_summary(ctx: RunContext) -> None:
    """sim/_summary.json: records per feed per day (before defects), duplicates separately; merged like
    the ledger so days written by earlier runs stay described."""
    path = ctx.sim / "_summary.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    days = {d.isoformat() for d in ctx.days()}

    def merged(section: str, feed: str, new: dict[str, int]) -> dict[str, int]:
        kept = {d: n for d, n in old.get(section, {}).get(feed, {}).items() if d not in days}
        return dict(sorted({**kept, **new}.items()))

    defects: dict[str, dict[str, int]] = {}
    for e in ctx.ledger.entries:
        defects.setdefault(e["feed"], {}).setdefault(e["kind"], 0)
        defects[e["feed"]][e["kind"]] += 1
    summary = {
        "last_run": {
            "start": ctx.start.isoformat(),
            "end": ctx.end.isoformat(),
            "seed": ctx.seed,
            "scale": ctx.scale,
            "defect_rate": ctx.defect_rate,
            "truncated": None
            if ctx.truncate is None
            else {"feed": ctx.truncate[0], "date": ctx.truncate[1].isoformat()},
            "defects": {f: dict(sorted(k.items())) for f, k in sorted(defects.items())},
        },
        "rows": {f: merged("rows", f, ctx.rows.get(f, {})) for f in FEEDS},
        "duplicates": {f: merged("duplicates", f, ctx.duplicates.get(f, {})) for f in FEEDS},
        "notes": {registry.FEED: ctx.extra[registry.FEED]},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
