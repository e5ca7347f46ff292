"""XLSX: the first row of the sheet is the header; Excel dates arrive as datetimes and are rendered as text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pingan.ingest.chunk import SourceChunk, records_to_chunk

CHUNK_ROWS = 50_000


def read_xlsx(stream: BinaryIO, source_file: str, *, sheet: str | None = None) -> Iterator[SourceChunk]:
    import io
    import zipfile

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
