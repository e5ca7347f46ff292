"""A data file answered the way object stores answer it: `Accept-Ranges`, `ETag`, `HEAD`, and a single
byte range as `206 Partial Content` (fsspec, under the stock delta-sharing client, reads large files in
parts and gives up on a server without ranges)."""

from __future__ import annotations

import hashlib
import re

from fastapi.responses import Response

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ValueError):
    pass


def file_response(data: bytes, range_header: str | None, *, head: bool = False) -> Response:
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    size = len(data)
    span = byte_range(range_header, size) if range_header else None
    if span is None:
        headers["Content-Length"] = str(size)
        return Response(b"" if head else data, 200, headers, "application/octet-stream")
    start, end = span
    headers |= {"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)}
    return Response(b"" if head else data[start : end + 1], 206, headers, "application/octet-stream")


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of one `bytes=` range (a suffix `-N` too); None for a header to ignore (several
    ranges: the whole file is a valid answer); RangeNotSatisfiable when it starts past the end."""
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(header)
    return start, end
