"""The reference seeds (dbt/seeds/*.csv) as the simulator uses them.

The warehouse and the simulator read the same files, so every town, grid and category code the sources
emit is one the warehouse can map; the simulator never invents a code except the unknown ones it injects
as defects.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT

SEEDS_DIR = PROJECT_ROOT / "dbt" / "seeds"
CONNECTORS_DIR = PROJECT_ROOT / "connectors"


@dataclass(frozen=True)
class Towns:
    """The towns of one jurisdiction as parallel arrays, with their grids flattened."""

    jurisdiction: str
    names: tuple[str, ...]
    lat: np.ndarray
    lon: np.ndarray
    is_border: np.ndarray
    grid_ids: np.ndarray  # every grid of the jurisdiction, grouped by town
    grid_start: np.ndarray  # first index into grid_ids per town
    grid_count: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        """Activity per town follows its number of grids (a grid is ~300 households)."""
        return self.grid_count / self.grid_count.sum()


@dataclass(frozen=True)
class Code:
    code: str
    label: str
    category: str


@dataclass(frozen=True)
class Reference:
    jurisdictions: dict[str, dict[str, str]]
    towns: dict[str, Towns]
    mappings: dict[str, tuple[Code, ...]]
    checkpoints: tuple[dict[str, str], ...]

    def codes(self, table: str) -> tuple[Code, ...]:
        return self.mappings[table]

    def code_weights(self, table: str, category_share: dict[str, float]) -> np.ndarray:
        """Each category's share split evenly over its codes."""
        codes = self.mappings[table]
        per_cat = {c: sum(1 for k in codes if k.category == c) for c in category_share}
        w = np.array([category_share[k.category] / per_cat[k.category] for k in codes])
        return w / w.sum()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@cache
def load_reference(seeds_dir: Path = SEEDS_DIR, connectors_dir: Path = CONNECTORS_DIR) -> Reference:
    jurisdictions = {r["jurisdiction_code"]: r for r in _rows(seeds_dir / "ref_jurisdictions.csv")}
    grids: dict[tuple[str, str], list[str]] = {}
    for r in _rows(seeds_dir / "ref_grids.csv"):
        grids.setdefault((r["jurisdiction_code"], r["town_name"]), []).append(r["grid_id"])
    by_jur: dict[str, list[dict[str, str]]] = {}
    for r in _rows(seeds_dir / "ref_towns.csv"):
        by_jur.setdefault(r["jurisdiction_code"], []).append(r)
    towns = {}
    for jur, rows in by_jur.items():
        per_town = [grids[(jur, r["town_name"])] for r in rows]
        counts = np.array([len(g) for g in per_town])
        towns[jur] = Towns(
            jurisdiction=jur,
            names=tuple(r["town_name"] for r in rows),
            lat=np.array([float(r["centre_lat"]) for r in rows]),
            lon=np.array([float(r["centre_lon"]) for r in rows]),
            is_border=np.array([r["is_border_town"] == "true" for r in rows]),
            grid_ids=np.array([g for gs in per_town for g in gs]),
            grid_start=np.concatenate([[0], np.cumsum(counts)[:-1]]),
            grid_count=counts,
        )
    # each feed's codes are the ones its connector spec maps (the simulator emits only known codes;
    # unmapped ones are injected as defects)
    mappings = {
        feed: [Code(code, m.label or code, m.category) for code, m in spec.code_mapping.items()]
        for feed, spec in load_specs(connectors_dir).items()
        if spec.code_mapping
    }
    return Reference(
        jurisdictions=jurisdictions,
        towns=towns,
        mappings={k: tuple(v) for k, v in mappings.items()},
        checkpoints=tuple(_rows(seeds_dir / "ref_checkpoints.csv")),
    )
