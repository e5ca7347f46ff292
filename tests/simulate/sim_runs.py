"""Small simulated runs for the simulator tests (a module of its own: conftest names clash across folders)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pingan.core.storage import Store
from pingan_sim import simulate

START, END = date(2024, 3, 6), date(2024, 3, 8)  # Wed..Fri
SEED = 7
SCALE = 0.05
# A higher rate than production so that three small days exercise every kind of defect.
DEFECT_RATE = 0.08


@dataclass
class SimRun:
    home: Path
    landing: Store
    counts: dict[str, int]
    start: date = START
    end: date = END

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def run_simulation(
    home: Path,
    *,
    seed: int = SEED,
    start: date = START,
    end: date = END,
    defect_rate: float = DEFECT_RATE,
    scale: float = SCALE,
) -> SimRun:
    landing = Store(f"file://{home / 'landing'}")
    counts = simulate(home, landing, start, end, seed=seed, scale=scale, defect_rate=defect_rate)
    return SimRun(home, landing, counts, start, end)
