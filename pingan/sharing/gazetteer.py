"""Names of places and units, so the PII guard reads 朱家角镇 as a town and not as the person 朱家.

Chinese has no spaces between words: a two-character name is a substring of many place and unit names
(朱家 in 朱家角镇, 罗星 in 罗星派出所, 金山 in 金山公安分局). Before names are looked for, every known place
or unit span is replaced by a placeholder, so a name counts only where it stands as a word of its own.
The spans come from the hub's reference data (towns, checkpoints, jurisdictions: dbt/seeds) and
`connectors/_gazetteer.yaml`: whole names, and each place's stem followed by a unit suffix
(`吴江` + `分局`). A bare stem stays visible when it is two characters long: 金泽 alone may be a person,
金泽镇 and 金泽派出所 are places.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

PLACEHOLDER = "〔地〕"
_ADMIN_SUFFIXES = ("街道", "镇", "乡", "区", "县", "市")
MIN_BARE_STEM = 3  # 朱家角 alone is a place; 金泽 alone could be somebody's name


@dataclass(frozen=True)
class Gazetteer:
    places: frozenset[str]
    stems: frozenset[str]
    stem_suffixes: tuple[str, ...]

    @functools.cache  # noqa: B019 - the gazetteer is frozen and lives as long as a publication run
    def pattern(self) -> str:
        """One RE2 alternation, longest alternatives first (RE2 picks the first that matches)."""
        suffixes = "|".join(re.escape(s) for s in sorted(self.stem_suffixes, key=len, reverse=True))
        stems = "|".join(re.escape(s) for s in sorted(self.stems, key=len, reverse=True))
        bare = sorted({s for s in self.stems if len(s) >= MIN_BARE_STEM} | self.places, key=len, reverse=True)
        parts = [f"(?:{stems})(?:{suffixes})"] if stems and suffixes else []
        parts += [re.escape(p) for p in bare]
        return "|".join(parts)

    def mask(self, text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
        pattern = self.pattern()
        return pc.replace_substring_regex(text, pattern, PLACEHOLDER) if pattern else text

    def mask_same_length(self, text: str) -> str:
        """The text with every place or unit span blanked character for character (offsets stay valid)."""
        pattern = self.pattern()
        return re.sub(pattern, lambda m: "\u3000" * len(m.group(0)), text) if pattern else text

    def mask_one(self, text: str) -> str:
        pattern = self.pattern()
        return re.sub(pattern, PLACEHOLDER, text) if pattern else text


def stem(name: str) -> str:
    """朱家角镇 → 朱家角, 罗星街道 → 罗星, 吴江区 → 吴江 (how units and short forms name a place)."""
    for suffix in _ADMIN_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def load_gazetteer(seeds_dir: Path, connectors_dir: Path) -> Gazetteer:
    extra = _read_yaml(connectors_dir / "_gazetteer.yaml")
    names = set(extra.get("places") or [])
    names |= _column(seeds_dir / "ref_towns.csv", "town_name")
    names |= _column(seeds_dir / "ref_jurisdictions.csv", "name_zh")
    names |= _column(seeds_dir / "ref_checkpoints.csv", "name")
    names.discard("")
    stems = {stem(n) for n in names if n.endswith(_ADMIN_SUFFIXES)}
    return Gazetteer(frozenset(names), frozenset(stems), tuple(extra.get("stem_suffixes") or ()))


def _column(path: Path, column: str) -> set[str]:
    if not path.exists():
        return set()
    with path.open(encoding="utf-8", newline="") as f:
        return {row[column].strip() for row in csv.DictReader(f) if row.get(column)}


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with `places` and `stem_suffixes`")
    return data
