"""Text is cleaned before it is judged, and text that cannot be cleaned quarantines its row.

- Identifiers (the primary key, resident ID numbers, USCCs, phones, device and grid ids) are NFKC-normalised:
  full-width and mixed-width digits and letters (`１３９…`, `ＱＰ…`) become ASCII, so the same record keeps
  one id whoever typed it. Resident ID numbers and USCCs are upper-cased: a check character `x` is `X`.
- A control character (NUL, ESC, DEL...; tab excepted) in any field is a broken export, never data:
  rule `control_character`. Left in, a NUL in a record id made two warehouse rows of one incident.
- A field longer than the feed's `max_field_bytes` (default 64 KiB) is rule `oversized_field`.

Vectorised: the usual clean chunk costs one min() over each column's character buffer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CONTROL_CHARACTER = "control_character"
OVERSIZED_FIELD = "oversized_field"
IDENTIFIER_COLUMNS = frozenset(
    {"caller_phone", "involved_id_numbers", "uscc", "legal_rep_id_number", "device_id", "grid_id", "event_id"}
)
UPPER_CASE_COLUMNS = frozenset({"involved_id_numbers", "uscc", "legal_rep_id_number"})
_CONTROL_RE = r"[\x00-\x08\x0a-\x1f\x7f]"
# free text may hold line breaks (a quoted CSV field typed with Alt+Enter); identifiers never
_CONTROL_IN_TEXT_RE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
QUARANTINED_VALUE_CHARS = 200  # what quarantine keeps of an oversized value


def identifier_columns(spec) -> dict[str, bool]:
    """Source columns to NFKC-normalise, each with whether it is also upper-cased."""
    out = {k: False for k in spec.primary_key}
    for source, col in spec.columns.items():
        if col.name in IDENTIFIER_COLUMNS:
            out[source] = out.get(source, False) or col.name in UPPER_CASE_COLUMNS
    return out


def clean_identifiers(text: dict[str, pa.Array], spec) -> dict[str, pa.Array]:
    """`text` (source column -> trimmed strings) with identifier columns normalised."""
    out = dict(text)
    for source, upper in identifier_columns(spec).items():
        values = out.get(source)
        if values is None or values.null_count == len(values):
            continue
        if not _is_ascii(values):
            values = pc.utf8_normalize(values, "NFKC")
        out[source] = pc.utf8_upper(values) if upper else values
    return out


def _data_bytes(values: pa.Array) -> np.ndarray:
    """The characters of a string array as one byte buffer (no copy)."""
    values = values.cast(pa.string()) if values.type != pa.string() else values
    data = values.buffers()[2]
    if data is None:
        return np.empty(0, np.uint8)
    offsets = np.frombuffer(values.buffers()[1], np.int32)
    lo, hi = offsets[values.offset], offsets[values.offset + len(values)]
    return np.frombuffer(data, np.uint8)[lo:hi]


def _is_ascii(values: pa.Array) -> bool:
    buf = _data_bytes(values)
    return not buf.size or int(buf.max()) < 0x80


def control_character_mask(values: pa.Array, free_text: bool = False) -> pa.Array | None:
    """Rows whose value holds a control character, or None when none does (the usual case). In free text
    (`free_text`: not an identifier) a line break is text, not a control character."""
    buf = _data_bytes(values)
    if not buf.size or (int(buf.min()) >= 0x20 and not (buf == 0x7F).any()):
        return None
    mask = pc.match_substring_regex(values, _CONTROL_IN_TEXT_RE if free_text else _CONTROL_RE)
    return mask if pc.any(mask).as_py() else None


def oversized_mask(values: pa.Array, max_bytes: int) -> pa.Array | None:
    """Rows whose value is longer than `max_bytes` UTF-8 bytes, or None when none is."""
    if len(values) == 0 or len(_data_bytes(values)) <= max_bytes:
        return None
    mask = pc.greater(pc.binary_length(values), max_bytes)
    return mask if pc.any(mask).as_py() else None


def shortened(values: pa.Array) -> pa.Array:
    """Oversized values as quarantine keeps them: the start, and how long the value was."""
    head = pc.utf8_slice_codeunits(values, 0, QUARANTINED_VALUE_CHARS)
    size = pc.cast(pc.binary_length(values), pa.string())
    return pc.binary_join_element_wise(head, pc.binary_join_element_wise("… (", size, " bytes)", ""), "")


def shorten_record(record: dict, max_bytes: int) -> dict:
    """A quarantined source row with any oversized field cut to its start."""
    return {
        k: (
            v[:QUARANTINED_VALUE_CHARS] + f"… ({len(v.encode())} bytes)"
            if isinstance(v, str) and len(v) > max_bytes // 4 and len(v.encode()) > max_bytes
            else v
        )
        for k, v in record.items()
    }
