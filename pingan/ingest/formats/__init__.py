"""Readers for the file formats feeds deliver: each yields SourceChunks of text columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pingan.core.feed_spec import Format
from pingan.ingest.chunk import SourceChunk


def read_stream(stream: BinaryIO, source_file: str, fmt: Format) -> Iterator[SourceChunk]:
    if fmt.kind == "csv":
        from pingan.ingest.formats.csv_reader import read_csv

        return read_csv(
            stream, source_file, encoding=fmt.encoding, delimiter=fmt.delimiter, block_bytes=fmt.block_bytes
        )
    if fmt.kind == "jsonl":
        from pingan.ingest.formats.jsonl_reader import read_jsonl

        return read_jsonl(stream, source_file, encoding=fmt.encoding)
    if fmt.kind == "xlsx":
        from pingan.ingest.formats.xlsx_reader import read_xlsx

        return read_xlsx(stream, source_file, sheet=fmt.sheet)
    raise ValueError(f"{source_file}: format {fmt.kind!r} is not a file format")
