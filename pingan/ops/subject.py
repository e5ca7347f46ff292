"""One person's identifiers and what erasure or correction does to a value that holds them (issue 18).

A request names identifiers a person is known by (resident ID numbers, phones). Erasure removes each of
them wherever it stands; correction replaces one wrong value by the right one. The hub holds a person in
two forms, and a change covers both:

- the raw value (lake, quarantine, restricted store): compared after `pseudonym.normalise` (spaces,
  dashes, letter case), element by element in `;`-separated lists;
- the hub pseudonym (`ps_…`, analysts' warehouse) of that normalised value.

`ValueChange` applies to one string: in a personal-data column each list element equal to a target is
dropped (erase) or replaced (correct); in any other text (a quarantined record's JSON, free text) each
occurrence of the target is replaced by the new value or by `ERASED`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

import pyarrow as pa

from pingan.core.pseudonym import normalise, pseudonym

ERASED = "[erased]"
LIST_SEPARATOR = ";"
# a column that names the person an identifier column identifies: erased with it (enterprise rows)
PAIRED_COLUMNS: dict[str, str] = {"legal_rep_id_number": "legal_rep_name"}


@dataclass(frozen=True)
class ValueChange:
    """Normalised target -> its new value (None: erase). Targets are raw values or hub pseudonyms."""

    targets: dict[str, str | None]
    _pattern: re.Pattern = field(init=False, repr=False, compare=False)
    _alternatives: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alternatives = "|".join(re.escape(t) for t in sorted(self.targets, key=len, reverse=True))
        # a target inside a longer number or word is someone else's
        bounded = rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])" if alternatives else r"(?!)"
        object.__setattr__(self, "_alternatives", alternatives or "(?!)")
        object.__setattr__(self, "_pattern", re.compile(bounded, re.IGNORECASE))

    @property
    def erasing(self) -> bool:
        return all(v is None for v in self.targets.values())

    @property
    def prefilter(self) -> str:
        """The targets as one case-insensitive RE2 expression (DuckDB's), without word bounds: a filter
        for rows worth looking at, `apply` decides."""
        return f"(?i)({self._alternatives})"

    def holds(self, value: str | None, *, identifier_column: bool = False) -> bool:
        """A target is in the text, or (an identifier column) is an element however spelled."""
        if value is None:
            return False
        if self._pattern.search(value) is not None:
            return True
        return identifier_column and any(normalise(p) in self.targets for p in value.split(LIST_SEPARATOR))

    def element(self, value: str | None) -> str | None:
        """A personal-data column's value: list elements equal to a target dropped or replaced."""
        if value is None:
            return None
        kept = []
        for part in value.split(LIST_SEPARATOR):
            key = normalise(part)
            if key in self.targets:
                if self.targets[key] is not None:
                    kept.append(self.targets[key])
            else:
                kept.append(part)
        return LIST_SEPARATOR.join(kept) if kept else None

    def text(self, value: str | None) -> str | None:
        """Free text: every occurrence of a target replaced (case-insensitively)."""
        if value is None:
            return None
        return self._pattern.sub(lambda m: self.targets.get(m.group(0).upper()) or ERASED, value)

    def apply(self, value: str | None, *, identifier_column: bool) -> str | None:
        if not self.holds(value, identifier_column=identifier_column):
            return value
        changed = self.element(value) if identifier_column else value
        return self.text(changed) if self.holds(changed) else changed


@dataclass(frozen=True)
class SubjectRequest:
    """What `pingan subject erase|correct` asks for: raw identifiers and (correct) their right values."""

    action: str  # erase | correct
    identifiers: dict[str, str | None]  # raw identifier as given -> new raw value (None: erase)
    reason: str
    by: str

    def raw_change(self) -> ValueChange:
        return ValueChange(
            {normalise(k): (None if v is None else normalise(v)) for k, v in self.identifiers.items()}
        )

    def pseudonym_change(self, hub_key: bytes) -> ValueChange:
        return ValueChange(
            {
                pseudonym(hub_key, k).upper(): (None if v is None else pseudonym(hub_key, v))
                for k, v in self.identifiers.items()
            }
        )

    def both(self, hub_key: bytes) -> ValueChange:
        return ValueChange({**self.raw_change().targets, **self.pseudonym_change(hub_key).targets})

    def reference(self, hub_key: bytes) -> list[str]:
        """Keys an auditor can recompute from an identifier and the hub key; never a value, never the
        pseudonym the analysts' tier uses (a separate HMAC domain)."""
        return sorted(
            hmac.new(hub_key, b"subject-request\0" + normalise(k).encode(), hashlib.sha256).hexdigest()[:16]
            for k in self.identifiers
        )


def change_table(table: pa.Table, change: ValueChange, identifier_columns: set[str]) -> tuple[pa.Table, int]:
    """`table` with `change` applied to every string column; and how many rows it changed."""
    changed_rows: set[int] = set()
    columns = {}
    for name in table.column_names:
        column = table[name]
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        values = column.to_pylist()
        identifier = name in identifier_columns
        hits = [i for i, v in enumerate(values) if change.holds(v, identifier_column=identifier)]
        if not hits:
            continue
        for i in hits:
            values[i] = change.apply(values[i], identifier_column=identifier)
        changed_rows.update(hits)
        columns[name] = (values, hits)
    if not changed_rows:
        return table, 0
    if change.erasing:
        _erase_paired(table, columns)
    for name, (values, _) in columns.items():
        index = table.column_names.index(name)
        table = table.set_column(
            index, table.schema.field(index), pa.array(values, table.schema.field(index).type)
        )
    return table, len(changed_rows)


def _erase_paired(table: pa.Table, columns: dict[str, tuple[list, list[int]]]) -> None:
    for identifier, paired in PAIRED_COLUMNS.items():
        if identifier in columns and paired in table.column_names:
            values, _ = columns.get(paired) or (table[paired].to_pylist(), [])
            for i in columns[identifier][1]:
                values[i] = None
            columns[paired] = (values, columns[identifier][1])
