"""Column treatments that protect people in a share: keyed pseudonyms, keyed record ids, coarse places and times.

A pseudonym is HMAC-SHA256 under the partnership's key, so the same person gets the same pseudonym in
every share to one partner (they can join their shares) and a different one for another partner (no
linking across partnerships). It is written in lower-case base32 behind a `p_` prefix: its alphabet has
no 0, 1, 8 or 9, so a pseudonym can never look like a mobile number or a resident ID to the PII guard.

Record ids are keyed the same way (`key_per_partnership`): `310118:QP110…` becomes `310118:k_…`, the
jurisdiction kept readable, so two partners who both receive a Qingpu row cannot pair their copies by id.
Times can be truncated to the hour or the day: what is left to link rows across partnerships is the
coarse time, the town and the category (see the README, "Residual linkage risk").
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


def keyed_id(key: bytes, value: str) -> str:
    jurisdiction, sep, _ = value.partition(":")
    digest = hmac.new(key, b"record-id\0" + value.strip().encode("utf-8"), hashlib.sha256).digest()[:15]
    keyed = "k_" + base64.b32encode(digest).decode("ascii").lower()
    return f"{jurisdiction}:{keyed}" if sep and jurisdiction.isdigit() else keyed


def key_ids_column(key: bytes, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Record ids (each ';'-separated id of a list, e.g. linked_record_ids) keyed per partnership."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())

    def one(value: str | None) -> str | None:
        if value is None:
            return None
        parts = [p for p in (s.strip() for s in value.split(MULTI_VALUE_SEPARATOR)) if p]
        return MULTI_VALUE_SEPARATOR.join(keyed_id(key, p) for p in parts) if parts else None

    return pa.chunked_array([pa.array([one(v) for v in column.to_pylist()], pa.string())])


def truncate_time(column: pa.ChunkedArray, unit: str) -> pa.ChunkedArray:
    """Timestamps floored to the hour or day (of the column's time zone); dates to the day they are."""
    if pa.types.is_date(column.type):
        return column
    if not pa.types.is_timestamp(column.type):
        raise TypeError(f"truncate_to_{unit} needs a timestamp column, not {column.type}")
    return pc.floor_temporal(column, unit=unit)


def coarsen_location(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if not pa.types.is_floating(column.type):
        raise TypeError(f"coarsen_location needs a floating-point coordinate column, not {column.type}")
    return pc.round(column, LOCATION_DECIMALS)
