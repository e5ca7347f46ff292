"""Masked forms of personal data for logs, samples and error messages (issue 18).

A value that holds a mainland mobile number or an 18-character resident ID number keeps only what an operator
needs to recognise the defect (its shape and the last digits): `139****5678`, `310118********001X`. Names cannot be
recognised by pattern: where a column is known to hold them, callers mask the whole value (`mask_all`).
"""

from __future__ import annotations

import re

_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_personal(text: str | None) -> str | None:
    """`text` with every resident ID and mobile number in it masked; other text unchanged."""
    if text is None:
        return None
    text = _ID.sub(lambda m: f"{m.group(1)}{'*' * 8}{m.group(2)}", text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def mask_all(text: str | None) -> str | None:
    """A value of a personal-data column: only its length survives."""
    return None if text is None else "*" * len(text)


def mask_sample(value):
    """A GX sample value (scalar, list or dict) with personal data masked in every string it holds."""
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, list | tuple):
        return [mask_sample(v) for v in value]
    if isinstance(value, dict):
        return {k: mask_sample(v) for k, v in value.items()}
    return value
