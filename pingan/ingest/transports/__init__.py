"""Transports: how a feed's rows are fetched. One implementation per kind, shared by every feed."""

from __future__ import annotations

from collections.abc import Iterator

from pingan.ingest.chunk import SourceChunk
from pingan.ingest.transports.context import ExtractContext, SourceMissing


def extract(ctx: ExtractContext) -> Iterator[SourceChunk]:
    kind = ctx.spec.transport.kind
    if kind in ("file_drop", "s3_landing"):
        from pingan.ingest.transports.file_drop import extract_files as run
    elif kind == "rest_json":
        from pingan.ingest.transports.rest_json import extract_rest as run
    elif kind == "http_file":
        from pingan.ingest.transports.http_file import extract_http_file as run
    elif kind == "sql_table":
        from pingan.ingest.transports.sql_table import extract_sql as run
    else:  # pragma: no cover - the spec schema admits no other kind
        raise ValueError(f"unknown transport {kind!r}")
    return run(ctx)


__all__ = ["ExtractContext", "SourceMissing", "extract"]
