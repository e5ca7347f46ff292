"""Delivery faults: a simulated day's delivery replaced by a broken one, listed in the defect ledger.

`simulate()` never makes these (they would block days of the demo); tests and operators apply one to a
day already simulated, to prove that a bad delivery never replaces a good day:

whole-delivery faults (the batch must be blocked and the day's previous commit stay the truth)
    empty_file                  0 bytes
    header_only                 the header and no rows (CSV, XLSX)
    timestamps_reformatted      every date and time in another format (`01.03.2025 08h15`)
    half_timestamps_reformatted every second row so
    body_wrong_encoding         the header in the declared encoding, the rows in another (text files)
    truncated_half              the file cut at half its bytes (an interrupted upload)
    rows_cut_90                 nine rows in ten missing
    rows_10x                    ten times the usual rows (each row ten times, under new record ids)
    empty_second_page           REST: pages after the first are valid JSON with no items and no next link
    dropped_optional_column     an optional column missing from the file
    renamed_column              an optional column under another name
    merged_header_cells         XLSX: two header cells merged
    redelivered_yesterday       yesterday's file delivered as today's
    shift_plus_8h, shift_minus_8h   every date and time moved by 8 hours (a zone mistake)
    year_2035                   every date and time in 2035
row faults (a few clean rows broken; the rest of the day commits)
    nul_in_record_id            a NUL inside the record id: the row is quarantined (control_character)
    oversized_field             a 2 MB field: the row is quarantined (oversized_field) with its line
    full_width_id               the record id in full-width characters: loaded under its ASCII id
    lowercase_check_x           a resident ID number ending in `x`: loaded as `X`
    ten_rows_2035               ten rows dated 2035: quarantined (event_time_outside_window)
    correction_file             five records delivered again with a changed value (a second file where the
                                feed takes several, else appended): quarantined as conflicting_record
format edges (the day loads exactly as without the fault)
    quoted_line_breaks          CSV: line breaks inside quoted free-text fields (Excel's Alt+Enter)
    jsonl_bom                   JSON Lines: a byte order mark before the first record

The fault rewrites the day's source file in place (the REST and HTTP servers serve those files), keeping
the original under sim/_originals/ for `restore_delivery`, and appends a ledger entry
`{"kind": <fault>, "record_id": <broken row's id or null>, ...}`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pingan.core.feed_spec import FeedSpec
from pingan.core.storage import Store
from pingan_sim.defects import Ledger

BATCH_FAULTS = (
    "empty_file",
    "header_only",
    "timestamps_reformatted",
    "half_timestamps_reformatted",
    "body_wrong_encoding",
)
# whole-delivery faults a parser cannot see: the feed's profile (or the source's stated total) must
PROFILE_FAULTS = (
    "truncated_half",
    "rows_cut_90",
    "rows_10x",
    "empty_second_page",
    "dropped_optional_column",
    "renamed_column",
    "merged_header_cells",
    "redelivered_yesterday",
    "shift_plus_8h",
    "shift_minus_8h",
    "year_2035",
)
ROW_FAULTS = (
    "nul_in_record_id",
    "oversized_field",
    "full_width_id",
    "lowercase_check_x",
    "ten_rows_2035",
    "correction_file",
)
FORMAT_EDGES = ("quoted_line_breaks", "jsonl_bom")
FAULTS = BATCH_FAULTS + PROFILE_FAULTS + ROW_FAULTS + FORMAT_EDGES
ORIGINALS = "_originals"
OVERSIZED_BYTES = 2 * 1024 * 1024
_DIGITS = re.compile(r"\d+")
_FULL_WIDTH = {
    c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
}
ID_NUMBER_COLUMNS = ("involved_id_numbers", "legal_rep_id_number")


class NotApplicable(ValueError):
    """This fault cannot happen to this feed's delivery (e.g. a header-only JSONL file, or SQL rows)."""


@dataclass
class Delivery:
    """A delivered file as rows of cells; `header` is None for JSON Lines."""

    header: list[str] | None
    rows: list  # list of lists (CSV, XLSX) or dicts (JSONL); a line that did not parse stays bytes
    encoding: str
    newline: str = "\n"
    bom: bool = False
    final_newline: bool = True  # a file cut short ends mid-line: keep it so
    merged: list[str] | None = None  # XLSX cell ranges to merge (a careless export's header)


def source_file(spec: FeedSpec, day: date) -> tuple[str, str]:
    """('sim' | 'landing', relative key) of the file a file-based feed delivers for `day`."""
    t = spec.transport
    if t.kind in ("file_drop", "s3_landing"):
        key = t.path.format(date=day)
        if "*" in key:  # Wujiang's uploads: one file per day in its dt= folder
            key = key.replace("*.jsonl", f"incidents_{day:%Y%m%d}.jsonl")
        return ("landing" if t.kind == "s3_landing" else "sim"), key
    if spec.feed == "pinghu_jinshan_joint_operations":
        from pingan_sim.joint_operations import file_for

        return "home", file_for(day)
    if spec.transport.kind == "rest_json":
        from pingan_sim.fire import _day_file

        return "home", _day_file(spec.transport.path.rsplit("/", 1)[1], day)
    raise NotApplicable(f"{spec.feed}: a {t.kind} source has no delivered file")


def _read_bytes(home: Path, landing: Store, where: str, key: str) -> bytes:
    if where == "landing":
        data = landing.get_bytes(key)
    else:
        path = home / key if where == "home" else home / "sim" / key
        data = path.read_bytes() if path.is_file() else None
    if data is None:
        raise FileNotFoundError(f"{where}:{key}: no delivery for this day (simulate it first)")
    return data


def _write_bytes(home: Path, landing: Store, where: str, key: str, data: bytes) -> None:
    if where == "landing":
        landing.put_bytes(key, data)
    else:
        (home / key if where == "home" else home / "sim" / key).write_bytes(data)


# --- reading and writing a delivery --------------------------------------------------------------------
def parse(spec: FeedSpec, data: bytes) -> Delivery:
    fmt = spec.format
    if fmt.kind == "xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        wb.close()
        return Delivery([str(h) for h in rows[0]], rows[1:], "utf-8")
    encoding = "utf-8" if fmt.encoding.lower() in ("utf-8-sig", "utf8-sig") else fmt.encoding
    bom = data.startswith(b"\xef\xbb\xbf")
    data = data[3:] if bom else data
    newline = "\r\n" if b"\r\n" in data[:4096] else "\n"
    lines = data.split(newline.encode())
    final_newline = bool(lines) and lines[-1] == b""
    if final_newline:
        lines = lines[:-1]
    if fmt.kind in ("jsonl", "json"):  # the REST servers serve JSON Lines files
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line.decode(encoding)))
            except (UnicodeDecodeError, json.JSONDecodeError):
                rows.append(line)  # a ledgered defect: keep its bytes
        return Delivery(None, rows, encoding, newline, bom, final_newline)
    header = next(csv.reader([lines[0].decode(encoding)], delimiter=fmt.delimiter))
    rows = []
    for line in lines[1:]:
        try:
            rows.append(next(csv.reader([line.decode(encoding)], delimiter=fmt.delimiter)))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            rows.append(line)
    return Delivery(header, rows, encoding, newline, bom, final_newline)


def render(spec: FeedSpec, d: Delivery, body_encoding: str | None = None) -> bytes:
    if spec.format.kind == "xlsx":
        from pingan_sim.writers import xlsx_bytes

        sheet = spec.format.sheet or "Sheet1"
        width = len(d.header)
        rows = [list(r) + [None] * (width - len(r)) for r in d.rows]
        return xlsx_bytes(sheet, d.header, rows, merged=d.merged)
    body_encoding = body_encoding or d.encoding
    out = io.BytesIO()
    if d.bom:
        out.write(b"\xef\xbb\xbf")
    if d.header is not None:
        out.write((_csv_line(d.header, spec) + d.newline).encode(d.encoding))
    for row in d.rows:
        if isinstance(row, bytes):
            out.write(row + d.newline.encode())
        elif isinstance(row, dict):
            out.write(
                (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + d.newline).encode(body_encoding)
            )
        else:
            out.write((_csv_line(row, spec) + d.newline).encode(body_encoding))
    data = out.getvalue()
    return data if d.final_newline or not d.rows else data[: -len(d.newline.encode())]


def _csv_line(cells: list, spec: FeedSpec) -> str:
    buf = io.StringIO()
    # a line terminator containing \n makes the writer quote fields holding a line break
    csv.writer(buf, delimiter=spec.format.delimiter, lineterminator="\n").writerow(
        ["" if c is None else c for c in cells]
    )
    return buf.getvalue().removesuffix("\n")


# --- cells ---------------------------------------------------------------------------------------------
def _time_columns(spec: FeedSpec) -> list[str]:
    """Source columns holding dates or times, except the incremental cursor (the server windows on it)."""
    cursor = spec.incremental.cursor_column if spec.incremental else None
    cols = [s for s, c in spec.columns.items() if c.type in ("timestamp", "date") and s != cursor]
    return cols + (list(spec.melt.columns) if spec.melt and spec.melt.type in ("timestamp", "date") else [])


def _reformatted(value):
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %Hh%M")
    if not isinstance(value, str) or not value:
        return value
    parts = _DIGITS.findall(value)
    if len(parts) < 3:
        return value
    y, m, d, *rest = parts
    return f"{d}.{m}.{y}" + (f" {rest[0]}h{rest[1]}" if len(rest) >= 2 else "")


def _get(d: Delivery, row, column: str):
    return row.get(column) if isinstance(row, dict) else row[d.header.index(column)]


def _set(d: Delivery, row, column: str, value) -> None:
    if isinstance(row, dict):
        row[column] = value
    else:
        row[d.header.index(column)] = value


def _has(d: Delivery, column: str) -> bool:
    return d.header is None or column in d.header


def _clean_rows(d: Delivery, spec: FeedSpec, dirty: set[str]) -> list[int]:
    """Indexes of complete rows whose record id the ledger does not name (safe to break one way)."""
    key = spec.primary_key[0]
    width = len(d.header) if d.header else None
    out = []
    for i, row in enumerate(d.rows):
        if isinstance(row, bytes) or (width and len(row) != width):
            continue
        rid = _get(d, row, key)
        if rid and str(rid) not in dirty:
            out.append(i)
    return out


# --- the faults ----------------------------------------------------------------------------------------
def _ric_with_x(valid: str) -> str:
    """A valid resident ID number whose check character is X, from a valid one (sequence digits varied)."""
    from stdnum.cn import ric

    for seq in range(1000):
        body = valid[:14] + f"{seq:03d}"
        if ric.calc_check_digit(body + "0") == "X":  # it reads the first 17 of 18 characters
            return body + "X"
    raise NotApplicable("no sequence gives check character X")  # never: one in eleven does


def apply_fault(spec: FeedSpec, d: Delivery, kind: str, dirty: set[str]) -> tuple[Delivery, str | None, str]:
    """The delivery with the fault, the record id of the broken row (row faults) and the body encoding."""
    encoding = d.encoding
    if kind == "empty_file":
        return Delivery(None, [], encoding), None, encoding
    if kind == "header_only":
        if d.header is None:
            raise NotApplicable(f"{spec.feed}: {spec.format.kind} has no header row")
        return Delivery(d.header, [], encoding, d.newline, d.bom), None, encoding
    if kind in ("timestamps_reformatted", "half_timestamps_reformatted"):
        cols = [c for c in _time_columns(spec) if _has(d, c)]
        if not cols:
            raise NotApplicable(f"{spec.feed}: no date or time column")
        step = 2 if kind.startswith("half") else 1
        for row in d.rows[::step]:
            if not isinstance(row, bytes):
                for c in cols:
                    _set(d, row, c, _reformatted(_get(d, row, c)))
        return d, None, encoding
    if kind == "body_wrong_encoding":
        if spec.format.kind == "xlsx" or spec.transport.kind == "rest_json":
            raise NotApplicable(
                f"{spec.feed}: {spec.format.kind} over {spec.transport.kind} has no text encoding"
            )
        return d, None, "utf-8" if encoding.lower().replace("-", "") != "utf8" else "gb18030"

    if kind in PROFILE_FAULTS + FORMAT_EDGES + ("ten_rows_2035", "correction_file"):
        from pingan_sim.profile_faults import apply_profile_fault

        return apply_profile_fault(spec, d, kind, dirty), None, encoding
    candidates = _clean_rows(d, spec, dirty)
    if not candidates:
        raise NotApplicable(f"{spec.feed}: no clean row to break")
    key = spec.primary_key[0]
    if kind == "lowercase_check_x":
        columns = [s for s, c in spec.columns.items() if c.name in ID_NUMBER_COLUMNS and _has(d, s)]
        for i in candidates:
            row = d.rows[i]
            value = next((_get(d, row, c) for c in columns if _get(d, row, c)), None)
            if value:
                column = next(c for c in columns if _get(d, row, c))
                ids = list(value) if isinstance(value, list) else str(value).split(";")
                ids[0] = _ric_with_x(ids[0])[:-1] + "x"
                _set(d, row, column, ids if isinstance(value, list) else ";".join(ids))
                return d, str(_get(d, row, key)), encoding
        raise NotApplicable(f"{spec.feed}: no resident ID number column with a value")
    row = d.rows[candidates[len(candidates) // 2]]
    rid = str(_get(d, row, key))
    if kind == "nul_in_record_id":
        if spec.format.kind == "xlsx":
            raise NotApplicable(f"{spec.feed}: XML (XLSX) cannot hold a NUL character")
        _set(d, row, key, rid[:2] + "\x00" + rid[2:])
    elif kind == "full_width_id":
        _set(d, row, key, "".join(_FULL_WIDTH.get(c, c) for c in rid))
    elif kind == "oversized_field":
        text_cols = [
            s
            for s, c in spec.columns.items()
            if c.type == "string" and c.name and not c.values and s not in spec.primary_key and _has(d, s)
        ]
        if not text_cols:
            raise NotApplicable(f"{spec.feed}: no free-text column")
        _set(d, row, text_cols[-1], "长" * (OVERSIZED_BYTES // 3))
    else:
        raise ValueError(f"unknown delivery fault {kind!r}; known: {', '.join(FAULTS)}")
    return d, rid, encoding


def deliver_fault(home: Path, landing: Store, spec: FeedSpec, day: date, kind: str) -> dict:
    """Replace the simulated delivery of `spec` for `day` with a faulty one; returns its ledger entry.
    The original is kept (once) under sim/_originals/ so `restore_delivery` can put the good day back."""
    if kind not in FAULTS:
        raise ValueError(f"unknown delivery fault {kind!r}; known: {', '.join(FAULTS)}")
    from pingan_sim import profile_faults

    where, key = source_file(spec, day)
    data = _read_bytes(home, landing, where, key)
    ledger_path = Path(home) / "sim" / "defects.jsonl"
    written = profile_faults.deliver_special(home, landing, spec, day, kind, where, key, data)
    record_id = None
    if written is None:
        faulty, record_id, body_encoding = apply_fault(
            spec, parse(spec, data), kind, _dirty(ledger_path, spec, day)
        )
        written = b"" if kind == "empty_file" else render(spec, faulty, body_encoding)
    _keep_original(home, where, key, data)
    _write_bytes(home, landing, where, key, written)
    entry = {
        "feed": spec.feed,
        "date": day.isoformat(),
        "file": key,
        "record_id": record_id,
        "kind": kind,
        "column": None,
    }
    ledger = Ledger()
    ledger.add([entry])
    ledger.write(ledger_path, lambda e: False)
    return entry


def _dirty(ledger_path: Path, spec: FeedSpec, day: date) -> set[str]:
    """Record ids the ledger already names for this feed and day (rows broken by the simulator)."""
    dirty = set()
    if ledger_path.exists():
        for line in ledger_path.read_text(encoding="utf-8").splitlines():
            e = json.loads(line)
            if e["feed"] == spec.feed and e["date"] == day.isoformat() and e["record_id"]:
                dirty.add(e["record_id"])
    return dirty


def _original_path(home: Path, where: str, key: str) -> Path:
    return Path(home) / "sim" / ORIGINALS / where / key


def _keep_original(home: Path, where: str, key: str, data: bytes) -> None:
    path = _original_path(home, where, key)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def restore_delivery(home: Path, landing: Store, spec: FeedSpec, day: date) -> None:
    """Put the simulated (good) delivery of `spec` for `day` back: a clean redelivery after a fault."""
    from pingan_sim import profile_faults

    where, key = source_file(spec, day)
    path = _original_path(home, where, key)
    if path.exists():
        _write_bytes(home, landing, where, key, path.read_bytes())
        path.unlink()
    profile_faults.undo_special(home, landing, spec, day, where, key)
