"""A relational table read through SQLAlchemy, incrementally on an updated_at cursor."""

from __future__ import annotations

import os
from collections.abc import Iterator

import sqlalchemy as sa

from pingan.ingest.chunk import SourceChunk, records_to_chunk
from pingan.ingest.transports.context import ExtractContext


def engine_url(ctx: ExtractContext) -> str:
    t = ctx.spec.transport
    url = os.environ.get(t.url_env)
    if not url:
        raise RuntimeError(f"{ctx.spec.feed}: {t.url_env} is not set (SQLAlchemy URL of the source database)")
    return url


def extract_sql(ctx: ExtractContext) -> Iterator[SourceChunk]:
    t = ctx.spec.transport
    cursor_col = ctx.spec.incremental.cursor_column if ctx.spec.incremental else None
    engine = sa.create_engine(engine_url(ctx))
    shown = engine.url.render_as_string(hide_password=True)
    name = f"{shown}#{t.table}"
    try:
        table = sa.Table(t.table, sa.MetaData(), autoload_with=engine)
        query = sa.select(table)
        if cursor_col:
            col = table.c[cursor_col]
            # the cursor column holds local wall-clock text in the source; compare in that format
            until = ctx.window_end.strftime("%Y-%m-%d %H:%M:%S")
            query = query.where(col < until)
            if ctx.cursor_before:
                query = query.where(col > ctx.cursor_before)
            query = query.order_by(col, *[table.c[k] for k in ctx.spec.primary_key if k != cursor_col])
        row_no, count = 0, 0
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            while batch := result.mappings().fetchmany(t.chunk_rows):
                records = [dict(r) for r in batch]
                rows = list(range(row_no + 1, row_no + len(records) + 1))
                row_no += len(records)
                count += len(records)
                yield records_to_chunk(name, records, rows, [])
        ctx.record_source(
            name,
            sha256=None,
            size=None,
            rows=count,
            query=str(query.compile(compile_kwargs={"literal_binds": True})),
        )
    finally:
        engine.dispose()
