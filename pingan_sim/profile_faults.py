"""Delivery faults that parse: the file reads, but it is not the day it claims to be (see delivery_faults).

Each rewrites a parsed delivery (rows cut or multiplied, a column dropped or renamed, times moved) or, for
the few that are not a rewrite of the day's own file, works on bytes or beside the file:

    truncated_half          the bytes cut at half (an interrupted upload)
    redelivered_yesterday   yesterday's bytes under today's name
    empty_second_page       a marker the simulated REST server reads (sim/server_faults.json)
    correction_file         a second file next to the day's (feeds whose path takes several files)
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from pathlib import Path

from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store
from pingan_sim.delivery_faults import (
    Delivery,
    NotApplicable,
    _clean_rows,
    _get,
    _has,
    _read_bytes,
    _set,
    _time_columns,
    _write_bytes,
    parse,
    render,
    source_file,
)

SHIFT_HOURS = 8
CORRECTED_ROWS = 5
FAR_YEAR = 2035
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


# --- faults on bytes or beside the file ---------------------------------------------------------------
def deliver_special(
    home: Path, landing: Store, spec: FeedSpec, day: date, kind: str, where: str, key: str, data: bytes
) -> bytes | None:
    """The bytes to deliver for a fault that is not a rewrite of the parsed day, else None."""
    if kind == "truncated_half":
        return data[: len(data) // 2]
    if kind == "redelivered_yesterday":
        if spec.transport.kind == "rest_json":
            raise NotApplicable(f"{spec.feed}: the API serves records by their update time, not as a file")
        _, yesterday = source_file(spec, day - timedelta(days=1))
        original = Path(home) / "sim" / "_originals" / where / yesterday
        try:
            return (
                original.read_bytes() if original.exists() else _read_bytes(home, landing, where, yesterday)
            )
        except FileNotFoundError:
            raise NotApplicable(f"{spec.feed}: no delivery of {day - timedelta(days=1)} to repeat") from None
    if kind == "empty_second_page":
        return _empty_second_page(home, spec, data)
    if kind == "correction_file" and "*" in getattr(spec.transport, "path", ""):
        d = parse(spec, data)
        _write_bytes(home, landing, where, _correction_key(key), render(spec, _corrections(spec, d, set())))
        return data
    return None


def _empty_second_page(home: Path, spec: FeedSpec, data: bytes) -> bytes:
    if spec.transport.kind != "rest_json":
        raise NotApplicable(f"{spec.feed}: not a paginated API")
    p = spec.transport.pagination
    page_size = getattr(p, "page_size", None) or getattr(p, "limit", 0)
    if data.count(b"\n") <= page_size:
        raise NotApplicable(f"{spec.feed}: the day fits one page of {page_size}")
    from pingan_sim.servers import SERVER_FAULTS

    marker = Path(home) / "sim" / SERVER_FAULTS
    marker.write_text(json.dumps({"empty_later_page": [spec.transport.path]}), "utf-8")
    return data


def _correction_key(key: str) -> str:
    stem, dot, ext = key.rpartition(".")
    return f"{stem}_correction{dot}{ext}"


def undo_special(home: Path, landing: Store, spec: FeedSpec, day: date, where: str, key: str) -> None:
    """Remove what a fault left beside the day's file (the server marker, a correction file)."""
    from pingan_sim.servers import SERVER_FAULTS

    (Path(home) / "sim" / SERVER_FAULTS).unlink(missing_ok=True)
    if "*" in getattr(spec.transport, "path", ""):
        if where == "landing":
            landing.delete(_correction_key(key))
        else:
            (Path(home) / "sim" / _correction_key(key)).unlink(missing_ok=True)


# --- faults on the parsed delivery --------------------------------------------------------------------
def apply_profile_fault(spec: FeedSpec, d: Delivery, kind: str, dirty: set[str]) -> Delivery:
    rows = [r for r in d.rows if not isinstance(r, bytes)]
    if kind == "rows_cut_90":
        d.rows = d.rows[::10]
    elif kind == "rows_10x":
        d.rows = d.rows + [_renamed_copy(spec, d, r, k) for k in range(1, 10) for r in rows]
    elif kind in ("dropped_optional_column", "renamed_column"):
        _drop_or_rename(spec, d, _optional_column(spec, d), rename=kind == "renamed_column")
    elif kind == "merged_header_cells":
        if spec.format.kind != "xlsx":
            raise NotApplicable(f"{spec.feed}: {spec.format.kind} has no cells to merge")
        d.header[2] = None
        d.merged = ["B1:C1"]
    elif kind in ("shift_plus_8h", "shift_minus_8h"):
        hours = SHIFT_HOURS if kind == "shift_plus_8h" else -SHIFT_HOURS
        _retime(spec, d, rows, lambda t: t + timedelta(hours=hours), dates_too=False)
    elif kind == "year_2035":
        _retime(spec, d, rows, _in_far_year, dates_too=True)
    elif kind == "ten_rows_2035":
        clean = [d.rows[i] for i in _clean_rows(d, spec, dirty)]
        if len(clean) < 40:
            raise NotApplicable(f"{spec.feed}: too few rows for ten of them to be a few")
        _retime(spec, d, clean[:: len(clean) // 10][:10], _in_far_year, dates_too=True)
    elif kind == "correction_file":
        d = _corrections(spec, d, dirty, append=True)
    elif kind == "quoted_line_breaks":
        _line_breaks(spec, d, dirty)
    elif kind == "jsonl_bom":
        if spec.format.kind != "jsonl":
            raise NotApplicable(f"{spec.feed}: not a JSON Lines file")
        d.bom = True
    return d


def _renamed_copy(spec: FeedSpec, d: Delivery, row, k: int):
    out = copy.copy(row)
    key = spec.primary_key[0]
    _set(d, out, key, f"{_get(d, row, key)}R{k}")
    return out


def _optional_column(spec: FeedSpec, d: Delivery) -> str:
    """The optional mapped column with the most values in this delivery (dropping it is visible)."""
    cursor = spec.incremental.cursor_column if spec.incremental else None
    candidates = [
        s
        for s, c in spec.columns.items()
        if c.name
        and not c.required
        and s not in spec.primary_key
        and s != cursor
        and c.optional is None
        and _has(d, s)
    ]
    rows = [r for r in d.rows if not isinstance(r, bytes)]
    filled = {s: sum(1 for r in rows if _value(d, r, s) not in (None, "")) for s in candidates}
    if not filled or max(filled.values()) == 0:
        raise NotApplicable(f"{spec.feed}: no optional column with values")
    return max(filled, key=lambda s: filled[s])


def _value(d: Delivery, row, column: str):
    if isinstance(row, dict):
        return row.get(column)
    i = d.header.index(column)
    return row[i] if i < len(row) else None


def _drop_or_rename(spec: FeedSpec, d: Delivery, column: str, *, rename: bool) -> None:
    new_name = f"{column}_new"
    if d.header is None:
        for row in d.rows:
            if isinstance(row, dict) and column in row:
                value = row.pop(column)
                if rename:
                    row[new_name] = value
        return
    i = d.header.index(column)
    if rename:
        d.header[i] = new_name
        return
    del d.header[i]
    for row in d.rows:
        if not isinstance(row, bytes) and i < len(row):
            del row[i]


def _in_far_year(t: datetime) -> datetime:
    try:
        return t.replace(year=FAR_YEAR)
    except ValueError:  # 29 February
        return t.replace(year=FAR_YEAR, day=28)


def _retime(spec: FeedSpec, d: Delivery, rows: list, move, *, dates_too: bool) -> None:
    """Move every date and time of `rows` (the incremental cursor excepted: the server windows on it)."""
    columns = [c for c in _time_columns(spec) if _has(d, c)]
    moved = 0
    for row in rows:
        for c in columns:
            value = _value(d, row, c)
            new = _moved(value, move, dates_too)
            if new is not value:
                _set(d, row, c, new)
                moved += 1
    if not moved:
        raise NotApplicable(
            f"{spec.feed}: no time of day to move" if not dates_too else f"{spec.feed}: no dates"
        )


def _moved(value, move, dates_too: bool):
    if isinstance(value, datetime):
        return move(value)
    if not isinstance(value, str) or not value:
        return value
    for fmt in _FORMATS:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if "%H" not in fmt and not dates_too:
            return value
        return move(parsed).strftime(fmt)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return move(parsed).isoformat()


def _text_column(spec: FeedSpec, d: Delivery) -> str:
    """A free-text column (no code list, no identifier, not personal data) the delivery has."""
    mapped = set(spec.code_mapping or {})
    for s, c in spec.columns.items():
        if (
            c.type == "string"
            and c.name
            and not c.values
            and not c.pii
            and s not in spec.primary_key
            and c.name not in ("town", "grid_id", "device_id", "uscc", "event_id")
            and s not in mapped
            and not c.required
            and _has(d, s)
        ):
            return s
    raise NotApplicable(f"{spec.feed}: no free-text column")


def _corrections(spec: FeedSpec, d: Delivery, dirty: set[str], append: bool = False) -> Delivery:
    """Five clean records again with a changed free-text value: appended, or as a delivery of their own."""
    column = _text_column(spec, d)
    picks = _clean_rows(d, spec, dirty)
    if len(picks) < CORRECTED_ROWS:
        raise NotApplicable(f"{spec.feed}: too few rows to correct")
    corrected = []
    for i in picks[: CORRECTED_ROWS * 3 : 3]:
        row = copy.copy(d.rows[i])
        _set(d, row, column, f"{_value(d, row, column) or ''}（更正）")
        corrected.append(row)
    if append:
        d.rows = d.rows + corrected
        return d
    return Delivery(d.header, corrected, d.encoding, d.newline, d.bom)


def _line_breaks(spec: FeedSpec, d: Delivery, dirty: set[str]) -> None:
    if spec.format.kind != "csv":
        raise NotApplicable(f"{spec.feed}: {spec.format.kind} has no quoted line breaks")
    column = _text_column(spec, d)
    for i in _clean_rows(d, spec, dirty)[::5]:
        value = _value(d, d.rows[i], column)
        if value and len(value) > 2:
            _set(d, d.rows[i], column, value[:2] + "\r\n" + value[2:])
