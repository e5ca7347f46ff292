"""Files dropped in a directory or an S3 landing bucket: the same code for both, through Store."""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Iterator

from pingan.core.storage import (
    Store,
    landing_store,  # noqa: F401 - re-exported for the transports
)
from pingan.ingest.chunk import SourceChunk
from pingan.ingest.formats import read_stream
from pingan.ingest.transports.context import ExtractContext, HashingReader, SourceMissing


def matching_keys(store: Store, pattern: str) -> list[str]:
    if "*" not in pattern and "?" not in pattern:
        return [pattern] if store.exists(pattern) else []
    prefix = pattern[: min(i for i in (pattern.find("*"), pattern.find("?")) if i >= 0)]
    prefix = prefix[: prefix.rfind("/") + 1]
    return [k for k in store.list(prefix) if fnmatch.fnmatchcase(k, pattern)]


def extract_files(ctx: ExtractContext) -> Iterator[SourceChunk]:
    transport = ctx.spec.transport
    store = landing_store(ctx.settings)
    pattern = transport.path.format(date=ctx.logical_date)
    keys = matching_keys(store, pattern)
    if not keys:
        raise SourceMissing(f"{ctx.spec.feed}: no file for {ctx.logical_date} at {store.uri(pattern)}")
    for key in keys:
        name = store.uri(key)
        raw = store.fs.open_input_stream(store._fs_path(key))
        reader = HashingReader(raw)
        with io.BufferedReader(reader, buffer_size=1 << 20) as stream:
            yield from read_stream(stream, name, ctx.spec.format)
        ctx.record_source(name, sha256=reader.sha256.hexdigest(), size=reader.size)
