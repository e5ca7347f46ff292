"""Cross-border double reports: one incident on the border, called in to both sides' 110 centres.

A few of Qingpu's calls from a border town (金泽镇, 练塘镇, 朱家角镇) are also taken, minutes later, by
the partner across the border (Wujiang or Jiashan, at the partner's nearest border town): same place
within about 150 m, a category code of the partner's own that maps to the same harmonised category, the
partner's own ids, units and caller. The warehouse's rule (dbt: int_incidents__cross_border_pairs) must
count each such incident once.

These are not defects: both records are valid and load. They are listed in their own ledger,
sim/double_reports.jsonl (one line per pair, kind `cross_border_double_report`), not in defects.jsonl,
whose every entry the quality gate must quarantine (tests/quality, pingan_sim.soak).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from pingan_sim import places, rhythm
from pingan_sim.defects import Frame
from pingan_sim.identities import mobiles
from pingan_sim.reference import Reference
from pingan_sim.writers import objects

KIND = "cross_border_double_report"
LEDGER = "double_reports.jsonl"
HUB = "310118"
PARTNERS = ("320509", "330421")  # the partners across Qingpu's borders that send incident feeds
RATE = 0.05  # of Qingpu's calls from a border town, taken by the other side too
LATEST_HOUR = 22  # originals before 22:00, so the copy (at most 20 minutes later) is the same day's call
MINUTES_LATER = (2, 20)  # the copy is taken this long after the original (the rule's window is 30)
OFFSET_DEG = 0.0008  # sd of the copy's position around the original (~90 m; the rule's radius is 500 m)


@dataclass(frozen=True)
class Original:
    """A Qingpu call that the partner across the border takes too."""

    record_id: str  # Qingpu's source id
    reported: np.datetime64
    category: str
    lat: float
    lon: float
    partner: str  # jurisdiction code of the partner that takes the copy
    town: str  # the partner's border town nearest the original's town


def nearest_border_town(ref: Reference, town: str, partner: str) -> str:
    """The partner's border town whose centre is nearest the centre of Qingpu's `town`."""
    hub = ref.towns[HUB]
    i = hub.names.index(town)
    other = ref.towns[partner]
    border = np.flatnonzero(other.is_border)
    d = (other.lat[border] - hub.lat[i]) ** 2 + (other.lon[border] - hub.lon[i]) ** 2
    return other.names[int(border[np.argmin(d)])]


def pick_originals(
    rng: np.random.Generator, ref: Reference, frame: Frame, categories: np.ndarray, *, avoid: set[int]
) -> tuple[list[int], list[Original]]:
    """Rows of Qingpu's day that the other side also takes: (row indices, what the copies need)."""
    hub = ref.towns[HUB]
    border = {name for name, b in zip(hub.names, hub.is_border.tolist(), strict=True) if b}
    hours = (frame["reported"] - frame["reported"].astype("datetime64[D]")).astype("timedelta64[h]")
    u, partner = rng.random(len(frame["id"])), rng.integers(0, len(PARTNERS), len(frame["id"]))
    rows, originals = [], []
    for i, town in enumerate(frame["town"].tolist()):
        ok = town in border and hours[i] < np.timedelta64(LATEST_HOUR, "h") and i not in avoid
        if not ok or u[i] >= RATE or np.isnan(frame["lat"][i]):
            continue
        code = PARTNERS[int(partner[i])]
        rows.append(i)
        originals.append(
            Original(
                record_id=str(frame["id"][i]),
                reported=frame["reported"][i],
                category=str(categories[i]),
                lat=float(frame["lat"][i]),
                lon=float(frame["lon"][i]),
                partner=code,
                town=nearest_border_town(ref, town, code),
            )
        )
    return rows, originals


def copies(
    rng: np.random.Generator,
    ref: Reference,
    mapping: str,
    jurisdiction: str,
    originals: list[Original],
    export_at: np.datetime64,
) -> Frame:
    """The partner's own records of the originals, as frame columns (ids are given by the caller); a
    call still open at the nightly export (`export_at`) has no closing time yet."""
    towns = ref.towns[jurisdiction]
    codes = ref.codes(mapping)
    n = len(originals)
    town_idx = np.array([towns.names.index(o.town) for o in originals], dtype=np.int64)
    later = rng.integers(MINUTES_LATER[0] * 60, MINUTES_LATER[1] * 60, n).astype("timedelta64[s]")
    reported = np.array([o.reported for o in originals], dtype="datetime64[s]") + later
    dispatched = reported + rhythm.lognormal_seconds(rng, n, 90, 0.6, 20, 1800)
    arrived = dispatched + rhythm.lognormal_seconds(rng, n, 310, 0.3, 60, 3600)
    closed = arrived + rhythm.lognormal_seconds(rng, n, 2700, 0.9, 300, 86400)
    closed[closed > export_at] = rhythm.NAT
    picked = []
    for o in originals:
        same = [c for c in codes if c.category == o.category]
        picked.append(same[int(rng.integers(len(same)))])
    lat = np.round(np.array([o.lat for o in originals]) + rng.normal(0, OFFSET_DEG, n), 6)
    lon = np.round(np.array([o.lon for o in originals]) + rng.normal(0, OFFSET_DEG * 1.15, n), 6)
    return {
        "reported": reported,
        "dispatched": dispatched,
        "arrived": arrived,
        "closed": closed,
        "code": np.array([c.code for c in picked], dtype=object),
        "label": np.array([c.label for c in picked], dtype=object),
        "town": np.array([o.town for o in originals], dtype=object),
        "grid": places.pick_grids(rng, towns, town_idx).astype(object),
        "lat": lat,
        "lon": lon,
        "address": np.array(places.addresses(rng, towns, town_idx), dtype=object),
        "unit": places.police_units(towns).astype(object)[town_idx],
        "result": np.array(["已通报对方辖区，联合处置"] * n, dtype=object),
        "phone": mobiles(rng, n).astype(object),
        "ids": objects(() for _ in range(n)),  # the people involved are on the first side's record
    }


def entry(day: date, original: Original, original_feed: str, copy_feed: str, copy_id: str) -> dict:
    return {
        "date": day.isoformat(),
        "kind": KIND,
        "original_feed": original_feed,
        "original_record_id": f"{HUB}:{original.record_id}",
        "double_report_feed": copy_feed,
        "double_report_record_id": f"{original.partner}:{copy_id}",
    }


def write_ledger(path: Path, entries: list[dict], replaced: Callable[[dict], bool]) -> None:
    """sim/double_reports.jsonl, merged like defects.jsonl: lines of days this run did not write stay."""
    kept = []
    if path.exists():
        kept = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        kept = [e for e in kept if not replaced(e)]
    rows = sorted(
        kept + entries, key=lambda e: (e["date"], e["original_record_id"], e["double_report_record_id"])
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in rows), encoding="utf-8")


def read_ledger(home: Path) -> list[dict]:
    """The pairs a simulation planted (empty before any run)."""
    path = Path(home) / "sim" / LEDGER
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
