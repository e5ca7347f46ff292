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
# GB/T 2260 province codes: the first two digits of every resident ID number
PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
    ]
)
MAX_NAME_CHARS = 8  # longer "names" (a transliterated name, a unit typed into a party column) are not probed
CARD_WORDS = ("卡", "账号", "帐号")  # an 18-digit number after these is a bank card, whatever its digits


@dataclass(frozen=True)
class Span:
    kind: str
    start: int  # in the original text
    end: int


_NEEDS_NORMALISING = re.compile(r"[^\x00-\x7f\u4e00-\u9fff\u3000-\u303f]|[〇零一二三四五六七八九]")


def normalised(text: str) -> tuple[str, list[int] | range]:
    """The text as detection reads it, and for each of its characters the original character's index."""
    if not _NEEDS_NORMALISING.search(text):  # plain ASCII and CJK: NFKC changes nothing, offsets stay
        return text, range(len(text))
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
            found = _kind_of(kind, re.sub(r"[^0-9A-Za-z]", "", m.group(0)), norm, m.start())
            if found and not _overlaps(taken, m.start(), m.end(), where):
                taken.append(Span(found, where[m.start()], where[m.end() - 1] + 1))
    return sorted(taken, key=lambda s: s.start)


def find_names(text: str, names: Iterable[str], places_masked: str | None = None) -> list[Span]:
    """Spans of the given names, longest first at each position; `places_masked` is the text with place and
    unit names blanked (same length), so a name inside 朱家角镇 is not one."""
    known = names if isinstance(names, (set, frozenset)) else set(names)
    searched = places_masked if places_masked is not None else text
    lengths = range(MAX_NAME_CHARS, 1, -1)  # a fixed probe: no pass over the names per text
    spans, i = [], 0
    while i < len(searched):
        size = next((n for n in lengths if searched[i : i + n] in known), 0)
        if size:
            spans.append(Span("person_name", i, i + size))
        i += size or 1
    return spans


def _kind_of(kind: str, compact: str, text: str, start: int) -> str | None:
    """The checked kind of a match, or None; an ID-shaped number after 卡 that passes Luhn is a card."""
    if kind == "resident_id" and _card_context(text, start) and _valid("bank_card", compact):
        return "bank_card"
    return kind if _valid(kind, compact) else None


def _card_context(text: str, start: int) -> bool:
    before = text[max(0, start - 6) : start]
    return any(w in before for w in CARD_WORDS)


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
    if number[:2] not in PROVINCES:
        return False
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
