"""What a share-server request may carry, checked before anything reads it: a query body is a JSON object
of bounded size and depth with typed fields, and what reaches the audit log is bounded and typed (a
client's free text never does). A malformed request is a 400 in the protocol's error shape, never a 500."""

from __future__ import annotations

import json

MAX_BODY_BYTES = 64 * 1024  # a query body is a handful of fields
MAX_DEPTH = 8  # nesting a query body may have (predicateHints hold small trees)
MAX_LIMIT_HINT = 10**12


class BadRequest(ValueError):
    """A request the server refuses as INVALID_PARAMETER_VALUE (400)."""


def query_body(body: bytes) -> dict:
    """The query's parameters: {} for an empty body, else a JSON object whose known fields are typed."""
    if not body:
        return {}
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"request body of {len(body):,} bytes; at most {MAX_BODY_BYTES:,}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8") from None
    _check_depth(text)
    try:
        params = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(params, dict):
        raise BadRequest(f"request body is a JSON {type(params).__name__}, expected an object")
    for name in ("version", "startingVersion", "endingVersion", "limitHint"):
        _check_int(params, name)
    if params.get("limitHint") is not None and not 0 <= params["limitHint"] <= MAX_LIMIT_HINT:
        raise BadRequest(f"limitHint {params['limitHint']} is out of range")
    return params


def _check_depth(text: str) -> None:
    """Refuse deep nesting before the parser recurses into it (brackets inside strings count too: a
    query body has no reason to hold many)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                raise BadRequest(f"request body nested deeper than {MAX_DEPTH} levels")
        elif ch in "]}":
            depth -= 1


def _check_int(params: dict, name: str) -> None:
    value = params.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadRequest(f"{name} must be an integer, not {json.dumps(value)[:40]}")
