"""What every feed generator shares during one run: where to write, random streams, ledger, counts.

Random streams are keyed by (seed, feed, day), not drawn from one generator in sequence, so a day's
files are the same whether it is simulated alone or inside a longer range (nightly runs and backfills
agree), and adding a feed never changes another feed's data.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from pingan.core.storage import Store
from pingan_sim.defects import Injected, Ledger, truncated_entry
from pingan_sim.reference import Reference

# Streams within a feed-day: the records themselves, the defects (so changing the defect rate leaves
# the clean data as it was), history before the run (e.g. when registry rows were last updated), and the
# calls taken on both sides of a border (double_reports.py).
DATA, DEFECTS, HISTORY, CROSSINGS = 0, 1, 2, 3


def feed_offset(name: str) -> int:
    """A stable number per feed (crc32), so streams do not depend on feed order."""
    return zlib.crc32(name.encode("utf-8"))


@dataclass
class RunContext:
    home: Path
    landing: Store
    ref: Reference
    start: date
    end: date
    seed: int
    scale: float
    defect_rate: float
    progress: Callable[[str], None] | None = None
    truncate: tuple[str, date] | None = None  # the one (feed, day) whose file is cut off
    ledger: Ledger = field(default_factory=Ledger)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict[str, dict] = field(default_factory=dict)  # per-feed notes for _summary.json
    double_reports: list[dict] = field(default_factory=list)  # sim/double_reports.jsonl of this run

    @property
    def sim(self) -> Path:
        return self.home / "sim"

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def rng(self, feed: str, day: date | None = None, stream: int = DATA) -> np.random.Generator:
        key = [self.seed, feed_offset(feed), day.toordinal() if day else 0, stream]
        return np.random.default_rng(key)

    def say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def is_truncated(self, feed: str, day: date) -> bool:
        return self.truncate == (feed, day)

    def record(self, feed: str, day: date, rows: int, injected: Injected | None = None) -> None:
        """Count a day's generated records (before defects) and file its ledger entries."""
        self.rows.setdefault(feed, {})[day.isoformat()] = rows
        if injected is not None:
            self.duplicates.setdefault(feed, {})[day.isoformat()] = len(injected.duplicates)
            self.ledger.add(injected.entries)

    def record_truncation(self, feed: str, day: date, file: str, record_id: str) -> None:
        self.ledger.add([truncated_entry(feed, day, file, record_id)])
