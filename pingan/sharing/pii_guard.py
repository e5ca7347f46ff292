"""The last check before a share is written: no raw ID number, phone number or person's name leaves the hub.

It runs on the table after its columns are treated and its free text redacted (`pingan.sharing.redact`),
and holds back what is left:
- `pii_column_unprotected`: a column the feed specs mark as PII (personal names, ID numbers, phones) is
  shared without `pseudonymise` (the column itself is the rule, whatever its values look like);
- `resident_id`, `bank_card`, `mobile`, `landline`, `passport`, `licence_plate`: a checked identifier
  anywhere in any column, free text included, in every disguise the detectors read
  (`pingan.sharing.detectors`: full width, Chinese numeral digits, separators and line breaks between
  digits, `+86`/`0086`); resident IDs by GB 11643 (18 and 15 digits), bank cards by their Luhn digit;
- `person_name`: a name found in the PII-marked columns of the raw-zone batches the share was built from
  (e.g. a grid event's `parties`) appears in any string column as a word of its own. Known place and unit
  names are masked first (`pingan.sharing.gazetteer`), so the person 朱家 is not found inside the town
  朱家角镇 nor 罗星 inside 罗星派出所.
Integer, decimal and floating-point columns are scanned as their decimal text: a phone number stored as a
number is still a phone number. A finding holds that dataset back (the others publish); the error names
partner, dataset, column, rule and the offending rows' keys, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pingan.sharing.detectors import ORDER, find_identifiers
from pingan.sharing.gazetteer import Gazetteer
from pingan.sharing.redact import PREFILTER

MIN_NAME_CHARS = 2


class PiiGuardError(RuntimeError):
    """Shares that would leak personal data; nothing of the publication run was written."""


KEYS_SHOWN = 5  # the offending rows' keys named in an error or audit entry (keys, never values)


@dataclass(frozen=True)
class Finding:
    column: str
    rule: str
    rows: int
    keys: tuple[str, ...] = ()  # the share's own row keys (keyed per partnership), never the values

    def describe(self, partner: str, dataset: str) -> str:
        keys = f"; rows {', '.join(self.keys)}" if self.keys else ""
        return (
            f"partner {partner}, dataset {dataset}, column {self.column}: rule {self.rule} "
            f"({self.rows} row{'s' if self.rows != 1 else ''}{keys})"
        )


def scan(
    table: pa.Table,
    *,
    pii_columns: Iterable[str] = frozenset(),
    pseudonymised: Iterable[str] = frozenset(),
    person_names: Iterable[str] = frozenset(),
    places: Gazetteer | None = None,
    key_column: str | None = None,
) -> list[Finding]:
    pii_columns, pseudonymised = set(pii_columns), set(pseudonymised)
    keys = table[key_column] if key_column in table.column_names else None
    findings = [
        Finding(name, "pii_column_unprotected", table.num_rows)
        for name in table.column_names
        if name in pii_columns and name not in pseudonymised
    ]
    names = {
        n
        for n in (unicodedata.normalize("NFKC", x).strip() for x in person_names)
        if len(n) >= MIN_NAME_CHARS
    }
    for name in table.column_names:
        text = _as_text(table[name])
        if text is None:
            continue
        findings += _identifier_findings(name, text, keys)
        if names and name not in pseudonymised and _is_string(table[name].type):
            words = places.mask(text) if places is not None else text
            hit = _rows_with_names(words, names)
            if hit is not None and pc.sum(hit).as_py():
                findings.append(Finding(name, "person_name", pc.sum(hit).as_py(), _keys(keys, hit)))
    return findings


def _identifier_findings(column: str, text: pa.ChunkedArray, keys) -> list[Finding]:
    """Checked identifiers of every kind: RE2 picks the candidate rows, the detectors judge only those."""
    rows = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(text, PREFILTER), False))
    values = pc.take(text, rows).to_pylist()
    hits: dict[str, list[int]] = {}
    for row, value in zip(rows.to_pylist(), values, strict=True):
        for kind in {s.kind for s in find_identifiers(value or "")}:
            hits.setdefault(kind, []).append(row)
    findings = []
    for kind in (k for k in ORDER if k in hits):
        shown = pc.take(keys, pa.array(hits[kind][:KEYS_SHOWN])).to_pylist() if keys is not None else []
        findings.append(Finding(column, kind, len(hits[kind]), tuple(str(k) for k in shown)))
    return findings


def _keys(keys, hit) -> tuple[str, ...]:
    if keys is None:
        return ()
    chosen = pc.filter(keys, hit).slice(0, KEYS_SHOWN).to_pylist()
    return tuple(str(k) for k in chosen)


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The column as NFKC-normalised text, or None for columns that cannot hold a number or a name."""
    kind = column.type
    if _is_string(kind):
        return pc.utf8_normalize(column, form="NFKC")
    if pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return pc.cast(column, pa.string())
    if pa.types.is_floating(kind):
        # a float holding 13912345678.0: its integral part is what a reader sees
        return pc.cast(pc.cast(pc.trunc(column), pa.int64(), safe=False), pa.string())
    return None


NAMES_PER_PATTERN = 2000  # RE2 compiles an alternation of this many literals into one small automaton


def _rows_with_names(text: pa.ChunkedArray, names: set[str]):
    """Which values contain any of the names (RE2 over Arrow: no Python loop per row); None without names."""
    ordered = sorted(names)
    found = None
    for start in range(0, len(ordered), NAMES_PER_PATTERN):
        pattern = "|".join(re.escape(n) for n in ordered[start : start + NAMES_PER_PATTERN])
        hit = pc.fill_null(pc.match_substring_regex(text, pattern), False)
        found = hit if found is None else pc.or_(found, hit)
    return found
