"""Free text that leaves the hub, with each personal-data span replaced by a typed mask.

Dispositions, notes and every other text column an agreement grants may hold what a person typed: a
caller's number, an ID number, a bank card, a name. Each span is replaced by its mask (〔手机号〕, 〔身份证号〕,
〔姓名〕 …, `pingan.sharing.detectors.MASKS`), and the share's manifest counts the masks per column. The PII
guard then scans the redacted table as the last line and holds back only what redaction left.

Only rows a fast RE2 pre-filter (over Arrow, no Python loop) flags are read in Python: rows with seven
or more digits close together, a passport or plate shape, or one of the names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pingan.sharing.detectors import MASKS, ORDER, Span, find_identifiers, find_names
from pingan.sharing.gazetteer import Gazetteer

_DIGITLIKE = "0-9０-９〇零一二三四五六七八九"
PREFILTER = (
    rf"[{_DIGITLIKE}](?:[^{_DIGITLIKE}]{{0,3}}[{_DIGITLIKE}]){{6}}"  # 7+ digits close together
    r"|[EeGgDdSsPp][A-Za-z]?[0-9]{7}"  # a passport's shape
    r"|[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z]"  # a plate's
)
NAMES_PER_PATTERN = 2000


@dataclass
class Redaction:
    table: pa.Table
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> mask kind -> spans


def redact_text(text: str, names: Iterable[str] = (), places: Gazetteer | None = None,
                kinds: Iterable[str] = ORDER) -> tuple[str, Counter]:  # fmt: skip
    """The text with every span masked, and the spans per kind."""
    spans = personal_spans(text, names, places, kinds)
    out, last, counts = [], 0, Counter()
    for s in sorted(spans, key=lambda s: s.start):
        out += [text[last : s.start], MASKS[s.kind]]
        last = s.end
        counts[s.kind] += 1
    return "".join(out) + text[last:], counts


def personal_spans(text: str, names: Iterable[str] = (), places: Gazetteer | None = None,
                   kinds: Iterable[str] = ORDER) -> list[Span]:  # fmt: skip
    """Every personal-data span: checked identifiers first, then names standing as words."""
    spans = find_identifiers(text, kinds)
    named = find_names(text, names)
    if named and places is not None:  # only then is it worth telling names from places
        named = find_names(text, names, places.mask_same_length(text))
    return spans + [s for s in named if not _inside(spans, s)]


def redact_table(table: pa.Table, columns: Iterable[str], names: Iterable[str] = (),
                 places: Gazetteer | None = None, kinds: Iterable[str] = ORDER) -> Redaction:  # fmt: skip
    """Every listed string column redacted; the counts name only columns where something was masked."""
    names, kinds = sorted({n for n in names if len(n) >= 2}), tuple(kinds)
    result = Redaction(table)
    for name in columns:
        column = result.table[name]
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        redacted, counts = _redact_column(column, names, places, kinds)
        if counts:
            position = result.table.column_names.index(name)
            result.table = result.table.set_column(position, name, redacted)
            result.counts[name] = dict(sorted(counts.items()))
    return result


def _redact_column(column: pa.ChunkedArray, names: list[str], places, kinds) -> tuple[pa.Array, Counter]:
    flagged = pc.indices_nonzero(candidates(column, names, places)).to_pylist()
    if not flagged:
        return column, Counter()
    values, known = column.to_pylist(), frozenset(names)
    total = Counter()
    for i in flagged:
        if values[i]:
            values[i], counts = redact_text(values[i], known, places, kinds)
            total += counts
    return pa.array(values, type=column.type), total


def candidates(column: pa.ChunkedArray, names: list[str], places: Gazetteer | None = None) -> pa.ChunkedArray:
    """Rows that may hold a span (RE2 over Arrow); the exact checks run only on these. Names are looked for
    with place and unit names masked, so 罗星派出所 alone does not make a row a candidate."""
    text = pc.utf8_normalize(column, form="NFKC")
    found = pc.fill_null(pc.match_substring_regex(text, PREFILTER), False)
    words = places.mask(column) if places is not None and names else column
    for start in range(0, len(names), NAMES_PER_PATTERN):
        pattern = "|".join(re.escape(n) for n in names[start : start + NAMES_PER_PATTERN])
        found = pc.or_(found, pc.fill_null(pc.match_substring_regex(words, pattern), False))
    return found


def _inside(spans: list[Span], s: Span) -> bool:
    return any(o.start < s.end and s.start < o.end for o in spans)
