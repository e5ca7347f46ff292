"""One file per logical date over HTTP (the Pinghu–Jinshan platform's daily CSV)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import requests

from pingan.ingest.chunk import SourceChunk
from pingan.ingest.formats import read_stream
from pingan.ingest.transports.context import ExtractContext, SourceMissing
from pingan.ingest.transports.http_client import SourceHttpError, base_url, bearer_headers, get_with_retries


def extract_http_file(ctx: ExtractContext) -> Iterator[SourceChunk]:
    t = ctx.spec.transport
    url = base_url(t.base_url_env, ctx.spec.feed) + t.path.format(date=ctx.logical_date)
    with requests.Session() as session:
        resp = get_with_retries(
            session,
            url,
            headers=bearer_headers(t.token_env, ctx.spec.feed),
            timeout=t.timeout_seconds,
            max_retries=t.max_retries,
            backoff=t.backoff_seconds,
            feed=ctx.spec.feed,
        )
    if resp.status_code == 404:
        raise SourceMissing(f"{ctx.spec.feed}: nothing published for {ctx.logical_date} at {url}")
    if resp.status_code != 200:
        raise SourceHttpError(f"{ctx.spec.feed}: GET {url} answered HTTP {resp.status_code}")
    body = resp.content
    yield from read_stream(io.BytesIO(body), url, ctx.spec.format)
    ctx.record_source(url, body)
