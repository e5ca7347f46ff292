"""CSV in any encoding, read in blocks so memory stays flat however large the file.

Decoding happens here in Python, not in DuckDB or pyarrow's transcoder: DuckDB 1.5.5's GB18030 decoder
corrupts characters at buffer boundaries, and a transcoder stops at the first undecodable byte where we
want to quarantine that one line and go on. Each block ends on a line boundary, is decoded (strictly;
per line only when the block fails), re-encoded as UTF-8 when needed and parsed by pyarrow with every
column as text. Rows with the wrong number of fields (e.g. a truncated file) become rejects.

Assumes no newline inside quoted fields, which holds for every CSV source we take.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
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
            nl = data.rfind(b"\n")
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


def _parse_block(
    raw: bytes,
    header: list[str],
    source_file: str,
    first_line: int,
    encoding: str,
    utf8: bool,
    delimiter: str,
) -> SourceChunk:
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
            rejects.append(
                Reject(
                    source_file, first_line + i, WRONG_ENCODING, line, fields=_fields(line, header, delimiter)
                )
            )
    if not utf8:
        wrong = [i for i in _utf8_lines_in_legacy(raw) if i not in set(bad_lines)]
        if wrong:
            lines = text.split("\n")
            raw_lines = raw.split(b"\n")
            for i in wrong:
                line = raw_lines[i].decode("utf-8")
                rejects.append(
                    Reject(
                        source_file,
                        first_line + i,
                        WRONG_ENCODING,
                        line,
                        fields=_fields(line, header, delimiter),
                    )
                )
                lines[i] = ""
            text = "\n".join(lines)
    body = raw if (utf8 and not bad_lines) else text.encode("utf-8")
    if utf8 and body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]

    invalid: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.text)
        return "skip"

    if not body or body.isspace():  # isspace() stops at the first character; strip() would copy
        empty = pa.table({name: pa.array([], pa.string()) for name in header})
        return SourceChunk(
            source_file, empty, pa.array([], pa.int64()), sorted(rejects, key=lambda r: r.row or 0)
        )
    try:
        table = _read_body(body, header, delimiter, on_invalid, PYARROW_BLOCK_BYTES)
    except pa.ArrowInvalid as exc:
        if "straddling" not in str(exc):
            raise
        # a row longer than pyarrow's parse block (an oversized field): parse this body in one block, so
        # the row reaches the normaliser, which quarantines it with its line (rule oversized_field)
        invalid.clear()
        table = _read_body(body, header, delimiter, on_invalid, len(body) + 1)
    # Line numbers of parsed rows: the non-empty lines, minus those pyarrow rejected. Found with numpy on
    # the UTF-8 body (same lines as the text): a Python pass over a million lines cost most of a second.
    candidates = _non_empty_lines(body)
    if invalid:
        # the handler may be called out of order when parsing in threads: match by text, not position
        lines = text.split("\n")
        pending = Counter(t.rstrip("\r") for t in invalid)
        drop = []
        for idx in candidates:
            line = lines[idx].rstrip("\r")
            if pending[line] > 0:
                pending[line] -= 1
                drop.append(idx)
                rejects.append(
                    Reject(
                        source_file,
                        first_line + int(idx),
                        MALFORMED_ROW,
                        line,
                        fields=_fields(line, header, delimiter),
                    )
                )
        candidates = np.setdiff1d(candidates, np.array(drop, dtype=np.int64))
    if len(candidates) != table.num_rows:
        # a stray quote or a bare carriage return made pyarrow merge or split lines: never guess row
        # numbers, read this block line by line instead and reject only the lines that do not parse
        return _parse_lines_individually(text, header, source_file, first_line, delimiter, rejects)
    rejects.sort(key=lambda r: r.row or 0)
    return SourceChunk(source_file, table, pa.array(candidates + first_line, pa.int64()), rejects)


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


def _parse_lines_individually(
    text: str, header: list[str], source_file: str, first_line: int, delimiter: str, rejects: list[Reject]
) -> SourceChunk:
    rejects = [r for r in rejects if r.rule != MALFORMED_ROW]  # recomputed below, line by line
    rows, numbers = [], []
    for i, line in enumerate(text.split("\n")):
        line = line.removesuffix("\r")
        if not line:
            continue
        try:
            fields = next(csv.reader([line], delimiter=delimiter, strict=True))
        except csv.Error:
            fields = None
        if fields is None or len(fields) != len(header):
            rejects.append(
                Reject(
                    source_file, first_line + i, MALFORMED_ROW, line, fields=_fields(line, header, delimiter)
                )
            )
            continue
        rows.append(fields)
        numbers.append(first_line + i)
    table = pa.table(
        {h: pa.array([r[j].strip() or None for r in rows], pa.string()) for j, h in enumerate(header)}
    )
    rejects.sort(key=lambda r: r.row or 0)
    return SourceChunk(source_file, table, pa.array(numbers, pa.int64()), rejects)
