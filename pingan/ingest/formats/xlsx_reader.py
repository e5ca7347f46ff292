"""XLSX: the first row of the sheet is the header; Excel dates arrive as datetimes and are rendered as text.

A header with merged cells or an empty name fails the file with the cell's address: a merge across two
column names shifts or drops a column (e.g. a whole lifecycle stage of a melted sheet) without an error.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from openpyxl.utils import get_column_letter, range_boundaries

from pingan.ingest.chunk import SourceChunk, records_to_chunk

CHUNK_ROWS = 50_000


def read_xlsx(stream: BinaryIO, source_file: str, *, sheet: str | None = None) -> Iterator[SourceChunk]:
    from openpyxl import load_workbook

    # openpyxl needs a seekable file; daily exports are small enough to hold in memory
    data = stream.read()
    if not data:  # 0 bytes: no rows, judged by the loader's empty_batch rule
        return
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except zipfile.BadZipFile:
        raise ValueError(f"{source_file}: not an XLSX workbook (not a zip archive)") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise ValueError(f"{source_file}: no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        header_row = next(it, None)
        if header_row is None:
            raise ValueError(f"{source_file}: sheet {ws.title!r} is empty, no header row")
        header_no = ws.min_row or 1
        check_header(source_file, ws.title, header_row, header_no, merged_ranges(data, ws))
        header = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header_row)]
        records, rows = [], []
        for row_no, values in enumerate(it, start=2):
            if values is None or all(v is None or v == "" for v in values):
                continue
            records.append(dict(zip(header, values, strict=False)))
            rows.append(row_no)
            if len(records) >= CHUNK_ROWS:
                yield records_to_chunk(source_file, records, rows, [])
                records, rows = [], []
        if records:
            yield records_to_chunk(source_file, records, rows, [])
    finally:
        wb.close()


_MERGE = re.compile(rb'<mergeCell ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')


def merged_ranges(data: bytes, ws) -> list[str]:
    """The merged cell ranges of a read-only worksheet, from its XML (read-only mode does not parse them)."""
    path = getattr(ws, "_worksheet_path", None)
    if not path:
        return []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        xml = zf.read(path.lstrip("/"))
    return [m.decode() for m in _MERGE.findall(xml)]


def check_header(source_file: str, sheet: str, header: tuple, row_no: int, merged: list[str]) -> None:
    """Fail on a merged header cell or an empty name between named ones, naming the cell."""
    for ref in merged:
        min_col, min_row, max_col, max_row = range_boundaries(ref)
        if min_row <= row_no <= max_row:
            raise ValueError(
                f"{source_file}: sheet {sheet!r}: header cells {ref} are merged; each column needs its own "
                "name in its own cell (unmerge them in the export)"
            )
    named = [i for i, h in enumerate(header) if h is not None and str(h).strip()]
    for i in range(named[-1] + 1 if named else 0):
        if header[i] is None or not str(header[i]).strip():
            raise ValueError(
                f"{source_file}: sheet {sheet!r}: header cell {get_column_letter(i + 1)}{row_no} is empty; "
                "every column needs a name"
            )
