"""The last check before a share is written: no raw ID number, phone number or person's name leaves the hub.

Rules, applied to every share after its columns are treated:
- `pii_column_unprotected`: a column the feed specs mark as PII (personal names, ID numbers, phones) is
  shared without `pseudonymise` (the column itself is the rule, whatever its values look like);
- `resident_id`: an 18-character GB 11643 number with a valid MOD 11-2 check character and birth date
  (python-stdnum), anywhere in any column, free text included: `330421198506150011`, spaced or dashed
  (`330421 19850615 0011`, `330421-19850615-0011`). The division code is not checked: a number issued
  under a since-renamed county code is still somebody's ID;
- `mobile`: an 11-digit mainland mobile number `1[3-9]x xxxx xxxx` anywhere in any column: plain
  (`13912345678`), with the country code (`+8613912345678`, `+86 139…`, `008613912345678`, `86-139…`),
  and with one separator (space, dash, dot, slash, middle dot, underscore) between any digits
  (`139-1234-5678`, `139 1234 5678`, `1391.234.5678`);
- `person_name`: a name found in the PII-marked columns of the raw-zone batches the share was built from
  (e.g. a grid event's `parties`) appears in any string column as a word of its own, e.g. typed into a
  free-text outcome. Known place and unit names are masked first (`pingan.sharing.gazetteer`), so the
  person 朱家 is not found inside the town 朱家角镇 nor 罗星 inside 罗星派出所.
Text is NFKC-normalised before anything else, so full-width digits and separators (`１３９－１２３４－５６７８`)
are caught like ASCII ones. Integer, decimal and floating-point columns are scanned as their decimal
text: a phone number stored as a number is still a phone number.
A finding holds that dataset back (the others publish); the error names partner, dataset, column, rule and
the offending rows' keys, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from pingan.sharing.gazetteer import Gazetteer

_SEP = r"[ \-./_·]?"  # at most one separator between two digits (after NFKC: full-width ones included)
RESIDENT_ID = re.compile(rf"(?<![0-9A-Za-z])[1-9](?:{_SEP}\d){{16}}{_SEP}[\dXx](?![0-9A-Za-z])")
MOBILE = re.compile(rf"(?<!\d)(?:(?:\+|00)[ \-]?86[ \-]?|86[ \-])?1[3-9](?:{_SEP}\d){{9}}(?!\d)")
_SEPARATORS = re.compile(r"[ \-./_·]")
# RE2 (Arrow) pre-filter on the normalised text: 11+ digits with at most one other character between
# two of them, so Python's exact checks only look at a few values
CANDIDATE = r"[0-9](?:[^0-9]?[0-9]){10}"
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
    names = {n for n in (unicode_normalised(x).strip() for x in person_names) if len(n) >= MIN_NAME_CHARS}
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
    """Resident IDs and mobiles: RE2 picks the candidates, Python's exact checks judge only those."""
    rows = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(text, CANDIDATE), False))
    values = pc.take(text, rows).to_pylist()
    findings = []
    for rule, matches in (("resident_id", has_resident_id), ("mobile", has_mobile)):
        hit_rows = [r for r, v in zip(rows.to_pylist(), values, strict=True) if v and matches(v)]
        if hit_rows:
            shown = pc.take(keys, pa.array(hit_rows[:KEYS_SHOWN])).to_pylist() if keys is not None else []
            findings.append(Finding(column, rule, len(hit_rows), tuple(str(k) for k in shown)))
    return findings


def _keys(keys, hit) -> tuple[str, ...]:
    if keys is None:
        return ()
    chosen = pc.filter(keys, hit).slice(0, KEYS_SHOWN).to_pylist()
    return tuple(str(k) for k in chosen)


def unicode_normalised(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text)


def has_resident_id(text: str) -> bool:
    return any(_is_resident_id(_SEPARATORS.sub("", m.group(0))) for m in RESIDENT_ID.finditer(text))


def has_mobile(text: str) -> bool:
    # a spaced resident ID holds 11 digits that look like a mobile: look only outside valid IDs
    text = RESIDENT_ID.sub(
        lambda m: " " if _is_resident_id(_SEPARATORS.sub("", m.group(0))) else m.group(0), text
    )
    return MOBILE.search(text) is not None


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


def _is_resident_id(candidate: str) -> bool:
    number = candidate.upper()
    if len(number) != 18 or ric.calc_check_digit(number) != number[-1]:
        return False
    try:
        ric.get_birth_date(number)
    except ValidationError:
        return False
    return True
