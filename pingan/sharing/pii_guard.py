"""The last check before a share is written: no raw ID number, phone number or PII column leaves the hub.

Rules, applied to every share after its columns are treated:
- `pii_column_unprotected`: a column the feed specs mark as PII (personal names, ID numbers, phones) is
  shared without `pseudonymise` (names cannot be recognised by pattern, so the column itself is the rule);
- `resident_id`: an 18-character GB 11643 number with a valid MOD 11-2 check character and birth date
  (python-stdnum), anywhere in any string column, free text included. The division code is not checked:
  a number issued under a since-renamed county code is still somebody's ID;
- `mobile`: an 11-digit mainland mobile number (1[3-9]x xxxx xxxx, also with spaces or dashes) anywhere
  in any string column.
Text is NFKC-normalised first, so full-width digits (１３９…) typed into free text are caught too.
A finding blocks the publication; the error names partner, dataset, column and rule, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
# RE2 (Arrow) pre-filter: values that could hold either, so Python only looks at a few
CANDIDATE = r"[0-9０-９]{11}|1[3-9][0-9][- ][0-9]{4}[- ][0-9]{4}"


class PiiGuardError(RuntimeError):
    """Shares that would leak personal data; nothing of the publication run was written."""


@dataclass(frozen=True)
class Finding:
    column: str
    rule: str
    rows: int

    def describe(self, partner: str, dataset: str) -> str:
        return (
            f"partner {partner}, dataset {dataset}, column {self.column}: rule {self.rule} "
            f"({self.rows} row{'s' if self.rows != 1 else ''})"
        )


def scan(
    table: pa.Table, *, pii_columns: set[str] = frozenset(), pseudonymised: set[str] = frozenset()
) -> list[Finding]:
    findings = [
        Finding(name, "pii_column_unprotected", table.num_rows)
        for name in table.column_names
        if name in pii_columns and name not in pseudonymised
    ]
    for name in table.column_names:
        column = table[name]
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        candidates = pc.filter(column, pc.fill_null(pc.match_substring_regex(column, CANDIDATE), False))
        values = [unicodedata.normalize("NFKC", v) for v in candidates.to_pylist()]
        for rule, matches in (("resident_id", _has_resident_id), ("mobile", _has_mobile)):
            hits = sum(1 for v in values if v and matches(v))
            if hits:
                findings.append(Finding(name, rule, hits))
    return findings


def _has_resident_id(text: str) -> bool:
    return any(_is_resident_id(m.group(0)) for m in RESIDENT_ID.finditer(text))


def _is_resident_id(candidate: str) -> bool:
    number = candidate.upper()
    if ric.calc_check_digit(number) != number[-1]:
        return False
    try:
        ric.get_birth_date(number)
    except ValidationError:
        return False
    return True


def _has_mobile(text: str) -> bool:
    return MOBILE.search(text) is not None
