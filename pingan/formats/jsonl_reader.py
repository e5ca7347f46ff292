"""JSON Lines: one object per line; a line that is not a JSON object becomes a reject, not a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import BinaryIO

from pingan.source_chunk import Reject, SourceChunk, records_to_chunk

CHUNK_ROWS = 50_000


def read_jsonl(stream: BinaryIO, source_file: str, *, encoding: str = "utf-8") -> Iterator[SourceChunk]:
    records: list[dict] = []
    rows: list[int] = []
    rejects: list[Reject] = []
    for line_no, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            rejects.append(Reject(source_file, line_no, "encoding", raw.decode(encoding, "replace").rstrip()))
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append(Reject(source_file, line_no, "malformed_row", f"{exc.msg}: {text.rstrip()[:500]}"))
            continue
        if not isinstance(rec, dict):
            rejects.append(Reject(source_file, line_no, "malformed_row", text.rstrip()[:500]))
            continue
        records.append(rec)
        rows.append(line_no)
        if len(records) >= CHUNK_ROWS:
            yield records_to_chunk(source_file, records, rows, rejects)
            records, rows, rejects = [], [], []
    if records or rejects:
        yield records_to_chunk(source_file, records, rows, rejects)
