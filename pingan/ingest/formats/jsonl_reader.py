"""JSON Lines: one object per line; a line that is not a JSON object becomes a reject, not a crash."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

from pingan.ingest.chunk import MALFORMED_ROW, WRONG_ENCODING, Reject, SourceChunk, records_to_chunk

CHUNK_ROWS = 50_000
_STRING_MEMBER = re.compile(r'"([^"\\]+)"\s*:\s*"([^"\\]*)"')


def _fields(text: str) -> dict[str, str] | None:
    """The string members a broken line still shows (`"id": "..."`), for its record id."""
    return dict(_STRING_MEMBER.findall(text)) or None


def read_jsonl(stream: BinaryIO, source_file: str, *, encoding: str = "utf-8") -> Iterator[SourceChunk]:
    records: list[dict] = []
    rows: list[int] = []
    rejects: list[Reject] = []
    for line_no, raw in enumerate(stream, start=1):
        if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]  # a byte order mark some exporters put first: not data
        if not raw.strip():
            continue
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            text = raw.decode(encoding, "replace").rstrip()
            rejects.append(Reject(source_file, line_no, WRONG_ENCODING, text, fields=_fields(text)))
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append(
                Reject(
                    source_file,
                    line_no,
                    MALFORMED_ROW,
                    f"{exc.msg}: {text.rstrip()[:500]}",
                    fields=_fields(text),
                )
            )
            continue
        if not isinstance(rec, dict):
            rejects.append(Reject(source_file, line_no, MALFORMED_ROW, text.rstrip()[:500]))
            continue
        records.append(rec)
        rows.append(line_no)
        if len(records) >= CHUNK_ROWS:
            yield records_to_chunk(source_file, records, rows, rejects)
            records, rows, rejects = [], [], []
    if records or rejects:
        yield records_to_chunk(source_file, records, rows, rejects)
