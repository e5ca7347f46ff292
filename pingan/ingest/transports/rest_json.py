"""REST JSON APIs with a bearer token, page or cursor pagination, and a since/until window.

A page is one chunk; its rows are numbered by position in the response. A server that serves the same
page twice (a known failure of paginated APIs under load) is detected and the page asked for again, so
no row is counted twice. A source that states its total (`total_field`) must deliver that many items: a
page with no items and no next link before the total is reached (a pull that ended early) fails the
load, naming the feed, the day, the total stated and the items read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from urllib.parse import urlencode

import requests

from pingan.core.feed_spec import CursorPagination, PagePagination
from pingan.ingest.chunk import SourceChunk, records_to_chunk
from pingan.ingest.transports.context import ExtractContext
from pingan.ingest.transports.http_client import SourceHttpError, base_url, bearer_headers, get_with_retries


def _window_params(ctx: ExtractContext) -> dict[str, str]:
    t = ctx.spec.transport
    params = {t.until_param: ctx.window_end.isoformat()}
    if ctx.cursor_before:
        params[t.since_param] = ctx.cursor_before
    return params


def extract_rest(ctx: ExtractContext) -> Iterator[SourceChunk]:
    t = ctx.spec.transport
    url = base_url(t.base_url_env, ctx.spec.feed) + t.path
    headers = bearer_headers(t.token_env, ctx.spec.feed)
    tally = _Tally()
    with requests.Session() as session:
        pages = _pages(session, url, headers, ctx, tally)
        for request_name, body, items in pages:
            ctx.record_source(request_name, body, items=len(items))
            if items:
                yield records_to_chunk(request_name, items, list(range(1, len(items) + 1)), [])
    tally.check(ctx, url)


class _Tally:
    """Items read against the total the source stated on its first page."""

    def __init__(self) -> None:
        self.stated: int | None = None
        self.read = 0

    def page(self, payload: dict, field: str | None, items: list) -> None:
        if field and self.stated is None and isinstance(payload.get(field), int):
            self.stated = payload[field]
        self.read += len(items)

    def check(self, ctx: ExtractContext, url: str) -> None:
        if self.stated is not None and self.read != self.stated:
            raise SourceHttpError(
                f"{ctx.spec.feed} {ctx.logical_date}: source_total: expected {self.stated:,} items "
                f"(the total {url} stated), observed {self.read:,} read; the pull ended early or the source "
                "changed during it; the previous commit of the day stays"
            )


def _fetch(session, url, params, headers, ctx) -> tuple[str, bytes, dict]:
    t = ctx.spec.transport
    resp = get_with_retries(
        session,
        url,
        params=params,
        headers=headers,
        timeout=t.timeout_seconds,
        max_retries=t.max_retries,
        backoff=t.backoff_seconds,
        feed=ctx.spec.feed,
    )
    name = f"{url}?{urlencode(params)}"
    if resp.status_code != 200:
        raise SourceHttpError(f"{ctx.spec.feed}: GET {name} answered HTTP {resp.status_code}")
    try:
        payload = resp.json()
    except ValueError:
        raise SourceHttpError(f"{ctx.spec.feed}: GET {name} did not return JSON") from None
    return name, resp.content, payload


def _items(payload: dict, field: str, name: str) -> list[dict]:
    items = payload.get(field)
    if not isinstance(items, list):
        raise SourceHttpError(f"{name}: response has no list field {field!r}")
    return items


def _digest(items: list[dict]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _pages(
    session, url, headers, ctx: ExtractContext, tally: _Tally
) -> Iterator[tuple[str, bytes, list[dict]]]:
    p = ctx.spec.transport.pagination
    retries = ctx.spec.transport.max_retries
    if isinstance(p, PagePagination):
        yield from _numbered_pages(session, url, headers, ctx, p, retries, tally)
    elif isinstance(p, CursorPagination):
        yield from _cursor_pages(session, url, headers, ctx, p, retries, tally)


def _numbered_pages(session, url, headers, ctx, p: PagePagination, retries: int, tally: _Tally):
    page, total, previous = 1, None, None
    while total is None or page <= total:
        for _ in range(retries + 1):
            params = {**_window_params(ctx), p.page_param: page, p.size_param: p.page_size}
            name, body, payload = _fetch(session, url, params, headers, ctx)
            items = _items(payload, p.items_field, name)
            echoed = payload.get(p.page_field) if p.page_field else page
            digest = _digest(items)
            if echoed == page and (digest != previous or not items):
                break  # a genuine page
        else:
            raise SourceHttpError(
                f"{ctx.spec.feed}: {url} kept serving a repeated page instead of page {page}"
            )
        total = int(payload.get(p.total_pages_field) or 0)
        previous = digest
        tally.page(payload, p.total_field, items)
        yield name, body, items
        if not items and tally.stated is not None and tally.read < tally.stated:
            tally.check(ctx, url)
        page += 1


def _cursor_pages(session, url, headers, ctx, p: CursorPagination, retries: int, tally: _Tally):
    cursor, seen_cursors, previous = None, set(), None
    while True:
        for _ in range(retries + 1):
            params = {**_window_params(ctx), p.limit_param: p.limit}
            if cursor:
                params[p.cursor_param] = cursor
            name, body, payload = _fetch(session, url, params, headers, ctx)
            items = _items(payload, p.items_field, name)
            next_cursor = payload.get(p.next_field)
            digest = _digest(items)
            if (digest != previous or not items) and (next_cursor is None or next_cursor not in seen_cursors):
                break
        else:
            raise SourceHttpError(f"{ctx.spec.feed}: {url} kept repeating the page after cursor {cursor!r}")
        previous = digest
        if cursor:
            seen_cursors.add(cursor)
        tally.page(payload, p.total_field, items)
        yield name, body, items
        if not next_cursor:
            return
        cursor = next_cursor
