"""Column treatments that protect people in a share: keyed pseudonyms and coarse locations.

A pseudonym is HMAC-SHA256 under the partnership's key, so the same person gets the same pseudonym in
every share to one partner (they can join their shares) and a different one for another partner (no
linking across partnerships). It is written in lower-case base32 behind a `p_` prefix: its alphabet has
no 0, 1, 8 or 9, so a pseudonym can never look like a mobile number or a resident ID to the PII guard.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pyarrow as pa
import pyarrow.compute as pc

MULTI_VALUE_SEPARATOR = ";"  # canonical lists, e.g. involved_id_numbers
LOCATION_DECIMALS = 2  # 0.01° is ~1.1 km north-south and ~0.95 km east-west at 31°N


def pseudonym(key: bytes, value: str) -> str:
    # the same person is written "11010519491231002x" by one system and "...002X" by another
    normalised = value.strip().upper().encode("utf-8")
    digest = hmac.new(key, normalised, hashlib.sha256).digest()[:20]  # 160 bits
    return "p_" + base64.b32encode(digest).decode("ascii").lower()


def pseudonymise_value(key: bytes, value: str | None) -> str | None:
    if value is None:
        return None
    parts = [p for p in (s.strip() for s in value.split(MULTI_VALUE_SEPARATOR)) if p]
    return MULTI_VALUE_SEPARATOR.join(pseudonym(key, p) for p in parts) if parts else None


def pseudonymise_column(key: bytes, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Each value (each ';'-separated element of it) replaced by its pseudonym; nulls stay null."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    return pa.chunked_array([pa.array([pseudonymise_value(key, v) for v in column.to_pylist()], pa.string())])


def coarsen_location(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if not pa.types.is_floating(column.type):
        raise TypeError(f"coarsen_location needs a floating-point coordinate column, not {column.type}")
    return pc.round(column, LOCATION_DECIMALS)
