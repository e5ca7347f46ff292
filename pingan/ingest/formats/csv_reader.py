"""CSV in any encoding, read in blocks so memory stays flat however large the file.

Decoding happens here in Python, not in DuckDB or pyarrow's transcoder: DuckDB 1.5.5's GB18030 decoder
corrupts characters at buffer boundaries, and a transcoder stops at the first undecodable byte where we
want to quarantine that one line and go on. Each block ends on a line boundary, is decoded (strictly;
per line only when the block fails), re-encoded as UTF-8 when needed and parsed by pyarrow with every
column as text. Rows with the wrong number of fields (e.g. a truncated file) become rejects.

A quoted field may hold a line break (Excel's Alt+Enter): a block never ends inside quotes, and such a
record is parsed in Python as one record numbered by its first line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pingan.ingest.chunk import MALFORMED_ROW, WRONG_ENCODING, Reject, SourceChunk

# Pre-filter for UTF-8 lines inside a GB18030 file: map every byte to its class (L = lead byte of a
# 3-byte UTF-8 CJK character, C = continuation byte, x = other) and look for two such characters in a
# row. translate() and a literal search run at memory speed, where a byte regex took seconds per 100 MB.
# Each candidate line is then confirmed by a strict UTF-8 decode of the whole line.
_BYTE_CLASS = bytes(
    ord("L") if 0xE4 <= b <= 0xE9 else ord("C") if 0x80 <= b <= 0xBF else ord("x") for b in range(256)
)
PYARROW_BLOCK_BYTES = 1 << 20  # pyarrow's default parse block; a longer row needs a retry (see _parse_block)
_UTF8_CJK_RUN = re.compile(re.escape(b"LCC" * 2))  # two characters: a two-character name is enough


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _decode_lines_individually(data: bytes, encoding: str) -> tuple[str, list[int]]:
    """Decode line by line; undecodable lines become empty lines (kept so numbering holds)."""
    out, bad = [], []
    for i, line in enumerate(data.split(b"\n")):
        try:
            out.append(line.decode(encoding))
        except UnicodeDecodeError:
            out.append("")
            bad.append(i)
    return "\n".join(out), bad


def _utf8_lines_in_legacy(data: bytes) -> list[int]:
    """Indexes of lines of a legacy-encoded (e.g. GB18030) block that are really UTF-8 text.

    Linear in the block: newlines are counted from the previous candidate, and once a line is judged
    its other candidates are skipped.
    """
    hits: list[int] = []
    line_no, counted_to, line_end = 0, 0, -1
    for m in _UTF8_CJK_RUN.finditer(data.translate(_BYTE_CLASS)):
        if m.start() < line_end:
            continue  # this line was already judged
        start = data.rfind(b"\n", 0, m.start()) + 1
        end = data.find(b"\n", m.end())
        end = len(data) if end < 0 else end
        line_no += data.count(b"\n", counted_to, start)
        counted_to, line_end = start, end
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
        hits.append(line_no)
    return hits


def _non_empty_lines(body: bytes) -> np.ndarray:
    """0-based indexes of the lines of `body` that hold something besides an optional carriage return."""
    buf = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    lengths = ends - starts
    has_cr = np.zeros(len(ends), dtype=bool)
    nonzero = lengths > 0
    has_cr[nonzero] = buf[ends[nonzero] - 1] == 13
    return np.flatnonzero(lengths - has_cr > 0)


def read_csv(
    stream: BinaryIO,
    source_file: str,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    block_bytes: int = 32 * 1024 * 1024,
) -> Iterator[SourceChunk]:
    utf8 = _is_utf8(encoding)
    carry = b""
    header: list[str] | None = None
    next_line = 1  # 1-based number of the first line in the current block
    eof = False
    while not eof:
        block = stream.read(block_bytes)
        eof = not block
        data = carry + (block or b"")
        if not data:
            break
        if eof:
            cut, carry = len(data), b""
        else:
            nl = _record_end(data)
            if nl < 0:  # a line longer than the block: read on
                carry = data
                continue
            cut, carry = nl + 1, data[nl + 1 :]
        raw = data[:cut]
        if header is None:
            first_nl = raw.find(b"\n")
            head_bytes = raw if first_nl < 0 else raw[:first_nl]
            header = _parse_header(head_bytes, encoding, delimiter, source_file)
            raw = b"" if first_nl < 0 else raw[first_nl + 1 :]
            next_line = 2
        chunk = _parse_block(raw, header, source_file, next_line, encoding, utf8, delimiter)
        next_line += raw.count(b"\n") + (0 if raw.endswith(b"\n") or not raw else 1)
        if chunk.rows_read:
            yield chunk
    # a 0-byte file yields no rows: the loader's empty_batch rule judges it like a header-only file


QUOTE_SEARCH_BYTES = 64 * 1024  # how far back a block's end looks for a newline outside quotes


def _record_end(data: bytes) -> int:
    """The last newline of `data` outside a quoted field (an even number of quotes before it), searched in
    the block's last QUOTE_SEARCH_BYTES; else its last newline (a stray quote must not hold the whole file).
    The quote byte never occurs inside a GB18030 or UTF-8 multi-byte character."""
    nl = data.rfind(b"\n")
    quotes = data.count(b'"', 0, nl) if nl >= 0 else 0
    floor = max(0, len(data) - QUOTE_SEARCH_BYTES)
    candidate = nl
    while candidate >= floor and quotes % 2:
        previous = data.rfind(b"\n", floor, candidate)
        if previous < 0:
            return nl
        quotes -= data.count(b'"', previous, candidate)
        candidate = previous
    return candidate if candidate >= floor else nl


def _parse_header(head: bytes, encoding: str, delimiter: str, source_file: str) -> list[str]:
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source_file}: line 1 (header) is not valid {encoding}: {exc.reason}") from None
    text = text.lstrip("\ufeff").rstrip("\r")
    names = next(csv.reader([text], delimiter=delimiter), [])
    names = [str(n).strip() for n in names]
    if len(set(names)) != len(names):
        raise ValueError(f"{source_file}: header has duplicate column names: {names}")
    return names


def _fields(line: str, header: list[str], delimiter: str) -> dict[str, str] | None:
    """What a rejected line's cells would be, as far as they split (the record id is usually first)."""
    try:
        cells = next(csv.reader([line.rstrip("\r")], delimiter=delimiter), [])
    except csv.Error:
        return None
    return dict(zip(header, cells, strict=False)) or None


@dataclass
class _Decoded:
    """A block as text, and the rejects of lines that were not in the file's declared encoding."""

    text: str
    body: bytes  # the text as UTF-8, what pyarrow parses
    rejects: list[Reject] = field(default_factory=list)


def _parse_block(
    raw: bytes,
    header: list[str],
    source_file: str,
    first_line: int,
    encoding: str,
    utf8: bool,
    delimiter: str,
) -> SourceChunk:
    """One block of whole records: decoded, parsed by pyarrow, each row numbered by its line; a block pyarrow
    cannot number (a quoted line break, a stray quote) is parsed record by record in Python instead."""
    decoded = _decode_block(raw, header, source_file, first_line, encoding, utf8, delimiter)
    if not decoded.body or decoded.body.isspace():  # isspace() stops at the first character
        empty = pa.table({name: pa.array([], pa.string()) for name in header})
        return SourceChunk(source_file, empty, pa.array([], pa.int64()), _by_row(decoded.rejects))
    table, invalid = _parse_with_pyarrow(decoded.body, header, delimiter)
    # Line numbers of parsed rows: the non-empty lines, minus those pyarrow rejected. Found with numpy on
    # the UTF-8 body (same lines as the text): a Python pass over a million lines cost most of a second.
    candidates = _non_empty_lines(decoded.body)
    rejects = list(decoded.rejects)
    if any(t.count('"') % 2 for t in invalid):
        # pyarrow split a record at a line break inside quotes (or met a stray quote): record by record
        return _parse_records(decoded.text, header, source_file, first_line, delimiter, decoded.rejects)
    if invalid:
        dropped, malformed = _invalid_lines(
            decoded.text, candidates, invalid, header, source_file, first_line, delimiter
        )
        rejects += malformed
        candidates = np.setdiff1d(candidates, np.array(dropped, dtype=np.int64))
    if len(candidates) != table.num_rows:
        # a quoted line break, a stray quote or a bare carriage return made pyarrow merge or split lines:
        # never guess row numbers, read this block record by record instead
        return _parse_records(decoded.text, header, source_file, first_line, delimiter, decoded.rejects)
    return SourceChunk(source_file, table, pa.array(candidates + first_line, pa.int64()), _by_row(rejects))


def _by_row(rejects: list[Reject]) -> list[Reject]:
    return sorted(rejects, key=lambda r: r.row or 0)


def _decode_block(
    raw: bytes,
    header: list[str],
    source_file: str,
    first_line: int,
    encoding: str,
    utf8: bool,
    delimiter: str,
) -> _Decoded:
    """Decode strictly; per line only when the block fails. In a legacy encoding, lines that are really
    UTF-8 are rejected too (they decode as the wrong characters instead of failing)."""
    rejects: list[Reject] = []
    bad_lines: list[int] = []
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        text, bad_lines = _decode_lines_individually(raw, encoding)
        raw_lines = raw.split(b"\n")
        for i in bad_lines:
            # one rule whatever the bytes turn out to be: the line is not in the file's declared encoding
            line = raw_lines[i].decode(encoding, "replace")
            rejects.append(_reject(source_file, first_line + i, WRONG_ENCODING, line, header, delimiter))
    if not utf8:
        text = _blank_utf8_lines(
            raw, text, set(bad_lines), header, source_file, first_line, delimiter, rejects
        )
    body = raw if (utf8 and not bad_lines) else text.encode("utf-8")
    if utf8 and body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    return _Decoded(text, body, rejects)


def _blank_utf8_lines(raw, text, bad_lines, header, source_file, first_line, delimiter, rejects) -> str:
    """Reject the UTF-8 lines of a legacy-encoded block and blank them in its text (numbering holds)."""
    wrong = [i for i in _utf8_lines_in_legacy(raw) if i not in bad_lines]
    if not wrong:
        return text
    lines = text.split("\n")
    raw_lines = raw.split(b"\n")
    for i in wrong:
        line = raw_lines[i].decode("utf-8")
        rejects.append(_reject(source_file, first_line + i, WRONG_ENCODING, line, header, delimiter))
        lines[i] = ""
    return "\n".join(lines)


def _reject(
    source_file: str, line_no: int, rule: str, line: str, header: list[str], delimiter: str
) -> Reject:
    return Reject(source_file, line_no, rule, line, fields=_fields(line, header, delimiter))


class _InvalidRows:
    """pyarrow's invalid-row handler: keeps the text of each row it could not split, and skips it."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, row: pacsv.InvalidRow) -> str:
        self.texts.append(row.text)
        return "skip"


def _parse_with_pyarrow(body: bytes, header: list[str], delimiter: str) -> tuple[pa.Table, list[str]]:
    """The body as a table of text columns, and the text of the rows pyarrow could not split."""
    invalid = _InvalidRows()
    try:
        return _read_body(body, header, delimiter, invalid, PYARROW_BLOCK_BYTES), invalid.texts
    except pa.ArrowInvalid as exc:
        if "straddling" not in str(exc):
            raise
    # a row longer than pyarrow's parse block (an oversized field): parse this body in one block, so the
    # row reaches the normaliser, which quarantines it with its line (rule oversized_field)
    invalid = _InvalidRows()
    return _read_body(body, header, delimiter, invalid, len(body) + 1), invalid.texts


def _invalid_lines(text, candidates, invalid, header, source_file, first_line, delimiter):
    """(indexes of the lines pyarrow rejected, their rejects). The handler may be called out of order when
    parsing in threads: lines are matched by text, not position."""
    lines = text.split("\n")
    pending = Counter(t.rstrip("\r") for t in invalid)
    dropped, rejects = [], []
    for idx in candidates:
        line = lines[idx].rstrip("\r")
        if pending[line] > 0:
            pending[line] -= 1
            dropped.append(idx)
            rejects.append(
                _reject(source_file, first_line + int(idx), MALFORMED_ROW, line, header, delimiter)
            )
    return dropped, rejects


def _read_body(body: bytes, header: list[str], delimiter: str, on_invalid, block_size: int) -> pa.Table:
    return pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(column_names=header, use_threads=True, block_size=block_size),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        ),
    )


def _parse_records(
    text: str, header: list[str], source_file: str, first_line: int, delimiter: str, rejects: list[Reject]
) -> SourceChunk:
    """Record by record in Python: a quoted field may hold line breaks (Excel's Alt+Enter), so a record may
    span lines; it keeps the number of its first line. A record that does not split into the header's
    fields (a stray quote swallowing the lines after it) is judged line by line instead."""
    rejects = [r for r in rejects if r.rule != MALFORMED_ROW]  # recomputed below
    rows, numbers = [], []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        record, end = _record_at(lines, i, delimiter, len(header))
        if record is not None:
            rows.append(record)
            numbers.append(first_line + i)
            i = end
            continue
        line = lines[i].removesuffix("\r")
        if line:
            fields = _split_line(line, delimiter)
            if fields is not None and len(fields) == len(header):
                rows.append(fields)
                numbers.append(first_line + i)
            else:
                rejects.append(_reject(source_file, first_line + i, MALFORMED_ROW, line, header, delimiter))
        i += 1
    table = pa.table(
        {h: pa.array([r[j].strip() or None for r in rows], pa.string()) for j, h in enumerate(header)}
    )
    return SourceChunk(source_file, table, pa.array(numbers, pa.int64()), _by_row(rejects))


MAX_RECORD_LINES = 50  # a quoted field spanning more lines than this is a stray quote, not a line break


def _record_at(lines: list[str], i: int, delimiter: str, width: int) -> tuple[list[str] | None, int]:
    """The record starting at line i if it spans several lines (an open quote closed on a later line) and
    splits into `width` fields: (fields, index of the line after it); else (None, i)."""
    line = lines[i]
    if line.count('"') % 2 == 0:
        return None, i
    end = i + 1
    while end < len(lines) and end - i <= MAX_RECORD_LINES:
        line = line + "\n" + lines[end]
        end += 1
        if line.count('"') % 2 == 0:
            fields = _split_line(line.removesuffix("\r"), delimiter)
            return (fields, end) if fields is not None and len(fields) == width else (None, i)
    return None, i


def _split_line(text: str, delimiter: str) -> list[str] | None:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None
