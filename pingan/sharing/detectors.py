"""Where personal data sits in a text: typed spans over the original string.

Detection reads a normalised copy (NFKC, full-width forms, Chinese numeral digits 〇零一…九) and allows
separators between digits (spaces, dashes, dots, slashes, middle dots, line breaks), so
`１３９－１２３４－５６７８`, `一三九 一二三四 五六七八` and `+86 139\\n1234 5678` are found like
`13912345678`. Each span maps back to the original characters, so redaction replaces exactly what a
reader sees. Numbers are checked, not just shaped: resident IDs by GB 11643 (18 digits: MOD 11-2 check
character and birth date; 15 digits: birth date), bank cards by their Luhn digit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from stdnum import luhn
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

MASKS = {
    "mobile": "〔手机号〕",
    "landline": "〔电话〕",
    "resident_id": "〔身份证号〕",
    "bank_card": "〔银行卡号〕",
    "passport": "〔护照号〕",
    "licence_plate": "〔车牌〕",
    "person_name": "〔姓名〕",
}
_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")
_S = r"[ \t\r\n\-./_·]{0,2}"  # separators a person types or a form inserts between digits
_D = r"\d"


def _digits(n: int) -> str:
    return rf"\d(?:{_S}\d){{{n - 1}}}"


_PATTERNS = {
    "resident_id": re.compile(rf"(?<![0-9A-Za-z])(?:{_digits(17)}{_S}[\dXx]|{_digits(15)})(?![0-9A-Za-z])"),
    "bank_card": re.compile(rf"(?<![0-9A-Za-z])[3-6](?:{_S}\d){{15,18}}(?![0-9A-Za-z])"),
    "mobile": re.compile(
        rf"(?<![0-9A-Za-z])(?:(?:\+|00){_S}86{_S}|86[ \-]+)?1[3-9](?:{_S}\d){{9}}(?![0-9A-Za-z])"
    ),
    "landline": re.compile(
        rf"(?<![0-9A-Za-z])(?:\(0\d{{2,3}}\)|0\d{{2,3}})[ \-]?[2-9](?:{_S}\d){{6,7}}(?![0-9A-Za-z])"
    ),
    "passport": re.compile(r"(?<![0-9A-Za-z])(?:[EeGgDdSsPp][A-Za-z]?\d{7,8})(?![0-9A-Za-z])"),
    "licence_plate": re.compile(
        r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][ ·\-]?[A-HJ-NP-Z0-9]{5,6}(?![0-9A-Za-z])"
    ),
}
ORDER = ("resident_id", "bank_card", "mobile", "landline", "passport", "licence_plate")


@dataclass(frozen=True)
class Span:
    kind: str
    start: int  # in the original text
    end: int


def normalised(text: str) -> tuple[str, list[int]]:
    """The text as detection reads it, and for each of its characters the original character's index."""
    out, where = [], []
    for i, ch in enumerate(text):
        for n in unicodedata.normalize("NFKC", ch).translate(_CN_DIGITS):
            out.append(n)
            where.append(i)
    return "".join(out), where


def find_identifiers(text: str, kinds: Iterable[str] = ORDER) -> list[Span]:
    """Checked identifier spans, longest kinds first; a span never overlaps an earlier one."""
    norm, where = normalised(text)
    taken: list[Span] = []
    for kind in (k for k in ORDER if k in set(kinds)):
        for m in _PATTERNS[kind].finditer(norm):
            if _valid(kind, re.sub(r"[^0-9A-Za-z]", "", m.group(0))) and not _overlaps(
                taken, m.start(), m.end(), where
            ):
                taken.append(Span(kind, where[m.start()], where[m.end() - 1] + 1))
    return sorted(taken, key=lambda s: s.start)


def find_names(text: str, names: Iterable[str], places_masked: str | None = None) -> list[Span]:
    """Spans of the given names; `places_masked` is the text with place and unit names masked (same length)."""
    searched = places_masked if places_masked is not None else text
    spans = []
    for name in sorted({n for n in names if len(n) >= 2}, key=len, reverse=True):
        start = searched.find(name)
        while start >= 0:
            if not any(s.start < start + len(name) and start < s.end for s in spans):
                spans.append(Span("person_name", start, start + len(name)))
            start = searched.find(name, start + len(name))
    return sorted(spans, key=lambda s: s.start)


def _overlaps(taken: list[Span], start: int, end: int, where: list[int]) -> bool:
    a, b = where[start], where[end - 1] + 1
    return any(s.start < b and a < s.end for s in taken)


def _valid(kind: str, compact: str) -> bool:
    if kind == "resident_id":
        return _is_resident_id(compact)
    if kind == "bank_card":
        return 16 <= len(compact) <= 19 and luhn.is_valid(compact)
    if kind == "mobile":
        return compact[-11:][0] == "1"
    return True


def _is_resident_id(number: str) -> bool:
    number = number.upper()
    if (
        len(number) == 15
    ):  # issued before 1999: 6-digit division, YYMMDD, 3-digit sequence, no check character
        return _is_date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    if len(number) != 18 or ric.calc_check_digit(number) != number[-1]:
        return False
    try:
        ric.get_birth_date(number)
    except ValidationError:
        return False
    return True


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
