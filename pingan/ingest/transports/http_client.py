"""GET with retries: exponential backoff on 5xx, timeouts and dropped connections; 4xx fails at once."""

from __future__ import annotations

import logging
import os
import time

import requests

log = logging.getLogger(__name__)
RETRY_STATUS = {500, 502, 503, 504, 429}


class SourceHttpError(RuntimeError):
    pass


def bearer_headers(token_env: str | None, feed: str) -> dict[str, str]:
    if not token_env:
        return {}
    token = os.environ.get(token_env)
    if not token:
        raise SourceHttpError(f"{feed}: the secret {token_env} is not set (bearer token for the source API)")
    return {"Authorization": f"Bearer {token}"}


def base_url(env_name: str, feed: str) -> str:
    url = os.environ.get(env_name)
    if not url:
        raise SourceHttpError(f"{feed}: {env_name} is not set (base URL of the source)")
    return url.rstrip("/")


def get_with_retries(
    session: requests.Session,
    url: str,
    *,
    params=None,
    headers=None,
    timeout: float,
    max_retries: int,
    backoff: float,
    feed: str,
) -> requests.Response:
    attempt = 0
    while True:
        try:
            resp = session.get(url, params=params, headers=headers, timeout=timeout)
            if resp.status_code not in RETRY_STATUS:
                return resp
            problem = f"HTTP {resp.status_code}"
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            problem = type(exc).__name__
        if attempt >= max_retries:
            raise SourceHttpError(f"{feed}: GET {url} failed after {attempt + 1} attempts: {problem}")
        delay = backoff * (2**attempt)
        log.warning(
            "%s: GET %s: %s, retrying in %.1fs (attempt %d/%d)",
            feed,
            url,
            problem,
            delay,
            attempt + 1,
            max_retries,
        )
        time.sleep(delay)
        attempt += 1
