"""Defect injection and the ledger that lists every injected defect.

A feed generator produces a day's records as a frame (column name -> numpy array, one row per record),
then `inject` picks about `rate` of the rows and breaks each in exactly one way that makes sense for the
feed, so a quality test can match ledger and findings one to one. Defects that live in the bytes
(duplicate lines, a line in the wrong encoding, the truncated file) are marked here and made by the writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from pingan_sim.identities import break_ric_check, break_uscc_check
from pingan_sim.places import OUTSIDE_DELTA, in_delta

KINDS = (
    "bad_id_checksum",
    "bad_uscc_checksum",
    "unknown_category_code",
    "stage_order",
    "missing_mandatory",
    "duplicate_delivery",
    "coord_outside_delta",
    "wrong_encoding",
    "truncated_file",
)

Frame = dict[str, np.ndarray]


@dataclass(frozen=True)
class DefectSpec:
    """Which defects a feed can carry and which of its columns each one breaks."""

    feed: str
    kinds: tuple[str, ...]
    source: dict[str, str]  # frame column -> the source system's column name, for the ledger
    id_col: str = "id"
    person_ids: str | None = None  # a str or a tuple of resident ID numbers per row
    uscc: str | None = None
    code: str | None = None
    label: str | None = None  # the code's label column, if the source writes one
    unknown_codes: tuple[tuple[str, str], ...] = ()  # (code, label) introduced upstream, not yet mapped
    stages: tuple[str, ...] = ()  # timestamps that must be non-decreasing, in lifecycle order
    stage_gap: tuple[int, int, str] = (5, 90, "m")  # a broken stage lands this far before its predecessor
    mandatory: tuple[str, ...] = ()
    coords: tuple[str, str] | None = None  # (lat, lon)

    def __post_init__(self):
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"{self.feed}: unknown defect kinds {sorted(unknown)}")


@dataclass
class Injected:
    """What the writer still has to do to the bytes, and the ledger entries of this file."""

    duplicates: set[int] = field(default_factory=set)
    misencoded: set[int] = field(default_factory=set)
    entries: list[dict] = field(default_factory=list)


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    if isinstance(value, float):
        return value != value
    return value == "" or value == ()


def _stage_pair(frame: Frame, spec: DefectSpec, i: int) -> int | None:
    """The latest stage whose predecessor is also known, or None."""
    for k in range(len(spec.stages) - 1, 0, -1):
        if not _missing(frame[spec.stages[k]][i]) and not _missing(frame[spec.stages[k - 1]][i]):
            return k
    return None


def _eligible(kind: str, frame: Frame, spec: DefectSpec, i: int) -> bool:
    if kind == "bad_id_checksum":
        return not _missing(frame[spec.person_ids][i])
    if kind == "bad_uscc_checksum":
        return not _missing(frame[spec.uscc][i])
    if kind == "stage_order":
        return _stage_pair(frame, spec, i) is not None
    if kind == "coord_outside_delta":
        return not _missing(frame[spec.coords[0]][i])
    return kind != "truncated_file"


def _apply(kind: str, frame: Frame, spec: DefectSpec, i: int, r: int, out: Injected) -> str | None:
    """Break row i in one way; returns the frame column broken (None for whole-record defects)."""
    if kind == "bad_id_checksum":
        col = spec.person_ids
        value = frame[col][i]
        if isinstance(value, tuple):
            j = r % len(value)
            frame[col][i] = value[:j] + (break_ric_check(value[j], 1 + r % 10),) + value[j + 1 :]
        else:
            frame[col][i] = break_ric_check(value, 1 + r % 10)
        return col
    if kind == "bad_uscc_checksum":
        frame[spec.uscc][i] = break_uscc_check(frame[spec.uscc][i], 1 + r % 30)
        return spec.uscc
    if kind == "unknown_category_code":
        code, label = spec.unknown_codes[r % len(spec.unknown_codes)]
        frame[spec.code][i] = code
        if spec.label:
            frame[spec.label][i] = label
        return spec.code
    if kind == "stage_order":
        k = _stage_pair(frame, spec, i)
        lo, hi, unit = spec.stage_gap
        col = spec.stages[k]
        frame[col][i] = frame[spec.stages[k - 1]][i] - np.timedelta64(lo + r % (hi - lo), unit)
        return col
    if kind == "missing_mandatory":
        col = spec.mandatory[r % len(spec.mandatory)]
        arr = frame[col]
        if arr.dtype.kind == "M":
            arr[i] = np.datetime64("NaT")
        elif arr.dtype.kind == "f":
            arr[i] = np.nan
        else:
            arr[i] = None
        return col
    if kind == "coord_outside_delta":
        lat_col, lon_col = spec.coords
        if r % 3 == 0:  # latitude and longitude swapped, the classic export bug
            frame[lat_col][i], frame[lon_col][i] = frame[lon_col][i], frame[lat_col][i]
        else:
            frame[lat_col][i], frame[lon_col][i] = OUTSIDE_DELTA[r % len(OUTSIDE_DELTA)]
        return lat_col if not in_delta(frame[lat_col][i], 120.0) else lon_col
    if kind == "duplicate_delivery":
        out.duplicates.add(i)
        return None
    if kind == "wrong_encoding":
        out.misencoded.add(i)
        return None
    raise ValueError(kind)


def inject(
    frame: Frame,
    spec: DefectSpec,
    rng: np.random.Generator,
    rate: float,
    *,
    day: date,
    file: str,
    exclude: tuple[int, ...] = (),
    forced: dict[int, str] | None = None,
) -> Injected:
    """Break about `rate` of the rows (or exactly the `forced` rows, with their preferred kinds)."""
    out = Injected()
    n = len(frame[spec.id_col])
    if forced is None:
        hit = rng.random(n) < rate
        hit[list(exclude)] = False
        rows = np.flatnonzero(hit).tolist()
        preferred: list[str | None] = [None] * len(rows)
    else:
        rows = sorted(i for i in forced if i not in set(exclude))
        preferred = [forced[i] for i in rows]
    picks = rng.random(len(rows)).tolist()
    draws = rng.integers(0, 1 << 30, len(rows)).tolist()
    for i, want, u, r in zip(rows, preferred, picks, draws, strict=True):
        kinds = [k for k in spec.kinds if _eligible(k, frame, spec, i)]
        if not kinds:
            continue
        kind = want if want in kinds else kinds[int(u * len(kinds))]
        col = _apply(kind, frame, spec, i, r, out)
        record_id = frame[spec.id_col][i]
        out.entries.append(
            {
                "feed": spec.feed,
                "date": day.isoformat(),
                "file": file,
                "record_id": None if _missing(record_id) else str(record_id),
                "kind": kind,
                "column": None if col is None else spec.source[col],
            }
        )
    return out


def truncated_entry(feed: str, day: date, file: str, record_id: str) -> dict:
    return {
        "feed": feed,
        "date": day.isoformat(),
        "file": file,
        "record_id": record_id,
        "kind": "truncated_file",
        "column": None,
    }


def _sort_key(e: dict) -> tuple:
    return (e["feed"], e["date"], e["file"], e["record_id"] or "", e["kind"], e["column"] or "")


class Ledger:
    """sim/defects.jsonl: one JSON object per injected defect, sorted, merged with days not rerun."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def add(self, entries: list[dict]) -> None:
        self.entries.extend(entries)

    def write(self, path: Path, replaced: Callable[[dict], bool]) -> None:
        """Keep earlier entries for which `replaced(entry)` is false (days this run did not touch)."""
        kept = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    if not replaced(entry):
                        kept.append(entry)
        entries = sorted(kept + self.entries, key=_sort_key)
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
