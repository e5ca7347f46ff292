"""Identifier checks of the domain, as plain functions (no Great Expectations here).

The custom expectations wrap these; connectors and tests may call them directly. Checksums come from
python-stdnum and division codes from the gb2260 package, not from hand-written tables. The one
exception is `resident_id_mask`, a numpy MOD 11-2 for million-row batches, which the tests hold to the
same answers as the stdnum-based `is_resident_id`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum.cn import ric, uscc

from pingan.core.canonical import local_today

_MOBILE = re.compile(r"1[3-9]\d{9}")
MOBILE_PATTERN = _MOBILE.pattern
_RESIDENT_ID = re.compile(r"\d{17}[\dX]")
DIVISION_LEVELS = ("any", "province", "prefecture", "county")


def split_list(value: str, separator: str | None) -> Iterator[str]:
    """The items of a `separator`-joined cell; empty items (`a;;b`, a trailing `;`) are not identifiers."""
    parts = value.split(separator) if separator else [value]
    return (p.strip() for p in parts if p.strip())


@lru_cache(maxsize=1)
def known_birth_places() -> frozenset[str]:
    """Division codes that stdnum's `cn/loc` table knows, in any period: the places an ID may name."""
    from stdnum import numdb

    codes: set[str] = set()
    for _, low, high, _, counties in numdb.get("cn/loc").prefixes:  # provinces, then their counties
        for province in range(int(low), int(high) + 1):
            for _, c_low, c_high, props, _ in counties:
                if "county" in props:
                    codes.update(f"{province:02d}{c:04d}" for c in range(int(c_low), int(c_high) + 1))
    return frozenset(codes)


def is_resident_id(value: str) -> bool:
    """GB 11643: 18 characters, MOD 11-2 check character, a real birth date, a known division code.

    Unlike `stdnum.cn.ric.is_valid`, the division code is not required to have existed in the birth
    year: codes are renamed after people are born (青浦 became 310118 in 1999) and the numbers issued
    since carry the new code, so that rule rejects real residents.
    """
    # stdnum's compact() costs more than the whole check; only values not already compact need it
    number = value if _RESIDENT_ID.fullmatch(value) else ric.compact(value)
    if not _RESIDENT_ID.fullmatch(number) or number[-1] != ric.calc_check_digit(number):
        return False
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= local_today() and number[:6] in known_birth_places()


_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


def resident_id_mask(values: Iterable[str], separator: str | None = None) -> np.ndarray:
    """`is_resident_id` over many non-null cells at once (every item valid -> True), for 1M-row batches.

    Compact values (the lake's normal form) are checked with numpy; anything else (lower-case x,
    spaces) goes through `is_resident_id` one by one. tests/quality pins the two to the same answers.
    """
    cells = pa.array(values, type=pa.large_string())
    if separator:
        lists = pc.split_pattern(cells, separator)
        items = pc.utf8_trim_whitespace(pc.list_flatten(lists))
        owners = pc.list_parent_indices(lists).to_numpy()
    else:
        items, owners = pc.utf8_trim_whitespace(cells), np.arange(len(cells))
    keep = pc.not_equal(items, "")  # `a;;b` and a trailing `;` hold no identifier
    items, owners = items.filter(keep), owners[keep.to_numpy(zero_copy_only=False)]

    ok = np.zeros(len(items), dtype=bool)
    compact = pc.match_substring_regex(items, r"^\d{17}[\dX]$").to_numpy(zero_copy_only=False)
    ok[compact] = _compact_ids_valid(items.filter(compact).to_numpy(zero_copy_only=False).astype("S18"))
    others = np.flatnonzero(~compact)
    ok[others] = [is_resident_id(items[int(i)].as_py()) for i in others]
    return np.bincount(owners[~ok], minlength=len(cells)) == 0


def _compact_ids_valid(numbers: np.ndarray) -> np.ndarray:
    chars = numbers.view(np.uint8).reshape(-1, 18)
    digits = chars[:, :17].astype(np.int64) - ord("0")
    checksum_ok = _ID_CHECK[(digits @ _ID_WEIGHTS) % 11] == chars[:, 17]
    parts = {"year": (4, 6, 10), "month": (2, 10, 12), "day": (2, 12, 14)}
    ymd = {k: digits[:, a:b] @ (10 ** np.arange(n - 1, -1, -1)) for k, (n, a, b) in parts.items()}
    born = pd.to_datetime(pd.DataFrame(ymd), errors="coerce")  # 0230 and friends become NaT
    date_ok = ((born >= "1900-01-01") & (born <= pd.Timestamp(local_today()))).to_numpy()
    places = digits[:, :6] @ (10 ** np.arange(5, -1, -1))
    place_ok = np.isin(places, _known_birth_place_numbers())
    return checksum_ok & date_ok & place_ok


@lru_cache(maxsize=1)
def _known_birth_place_numbers() -> np.ndarray:
    return np.array(sorted(int(c) for c in known_birth_places()))


def is_uscc(value: str) -> bool:
    """GB 32100 unified social credit code: 18 characters and its check character."""
    return uscc.is_valid(value)


def is_mobile(value: str) -> bool:
    """A mainland mobile number as stored in the lake: 11 digits starting 13-19, no prefix or spaces."""
    return _MOBILE.fullmatch(value) is not None


@lru_cache(maxsize=2)
def _division_codes(latest_only: bool) -> frozenset[str]:
    from gb2260.data import data

    revisions = [data[None]] if latest_only else data.values()
    return frozenset(f"{code:06d}" for codes in revisions for code in codes)


def division_level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    return "prefecture" if code.endswith("00") else "county"


def is_division_code(value: str, level: str = "any", latest_only: bool = True) -> bool:
    """GB/T 2260 code known to the gb2260 package (its latest revision unless latest_only=False)."""
    if level not in DIVISION_LEVELS:
        raise ValueError(f"level must be one of {DIVISION_LEVELS}, not {level!r}")
    if len(value) != 6 or not value.isdigit() or value not in _division_codes(latest_only):
        return False
    return level == "any" or division_level(value) == level


# Text that looks like a resident ID number or a mobile number anywhere in a value (lists included).
_LOOKS_PERSONAL = r"(^|\D)(\d{17}[\dXx]|1[3-9]\d{9})($|\D)"


def looks_personal(values: pa.Array) -> bool:
    """True if any value of a column the spec does not know holds what looks like a resident ID number
    or a mobile number: such a column must not reach the lake unmasked."""
    text = pc.cast(values, pa.string())
    return bool(pc.any(pc.match_substring_regex(text, _LOOKS_PERSONAL)).as_py())
