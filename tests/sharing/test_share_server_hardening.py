"""The share server answers as an object store for its files (ranges, HEAD, ETag) and refuses every
malformed request with a 4xx in the protocol's error shape; the audit log keeps bounded, typed fields."""

from __future__ import annotations

import io
import json

import fsspec
import pyarrow.parquet as pq
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_share_server import served, token_of  # noqa: F401 - the fixture, shared

from pingan.core import audit

QUERY = "/shares/wujiang/schemas/qingwujia/tables/border_incidents/query"


def query(url: str, token: str, body: bytes) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.post(url + QUERY, headers=headers, data=body, timeout=30)


def first_file_url(url: str, token: str) -> str:
    lines = query(url, token, b"{}").text.splitlines()
    return json.loads(lines[-1])["file"]["url"]


def test_files_answer_ranges_head_and_etag(served):  # noqa: F811
    _, _, _, url, profile, _ = served
    file_url = first_file_url(url, token_of(profile["wujiang"]))
    whole = requests.get(file_url, timeout=30)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    size, etag = len(whole.content), whole.headers["ETag"]
    head = requests.head(file_url, timeout=30)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == size and not head.content
    assert head.headers["ETag"] == etag
    part = requests.get(file_url, headers={"Range": "bytes=4-103"}, timeout=30)
    assert part.status_code == 206 and part.content == whole.content[4:104]
    assert part.headers["Content-Range"] == f"bytes 4-103/{size}"
    tail = requests.get(file_url, headers={"Range": "bytes=-8"}, timeout=30)
    assert tail.status_code == 206 and tail.content == whole.content[-8:]  # the Parquet footer
    past = requests.get(file_url, headers={"Range": f"bytes={size}-"}, timeout=30)
    assert past.status_code == 416 and past.headers["Content-Range"] == f"bytes */{size}"


def test_a_file_read_in_small_parts_over_http_equals_the_whole(served):  # noqa: F811
    """fsspec (under the stock delta-sharing client) reads a file larger than its block in ranged parts."""
    _, _, _, url, profile, _ = served
    file_url = first_file_url(url, token_of(profile["wujiang"]))
    whole = pq.read_table(io.BytesIO(requests.get(file_url, timeout=30).content))
    with fsspec.filesystem("http").open(file_url, block_size=512) as fh:
        parts = pq.read_table(fh)
    assert parts.equals(whole) and whole.num_rows > 0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected an object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper"),
        (b"[" * 100_000 + b"]" * 100_000, "at most"),
        (json.dumps({"version": True}).encode(), "version must be an integer"),
        (json.dumps({"limitHint": "x" * 5_000_000}).encode(), "at most"),
        (json.dumps({"limitHint": -1}).encode(), "out of range"),
        (json.dumps({"startingVersion": "0"}).encode(), "startingVersion must be an integer"),
    ],
)
def test_a_malformed_query_is_a_400_in_the_protocol_shape(served, body, says):  # noqa: F811
    _, shares, _, url, profile, _ = served
    answer = query(url, token_of(profile["wujiang"]), body)
    assert answer.status_code == 400, answer.text[:200]
    assert answer.json()["errorCode"] == "INVALID_PARAMETER_VALUE" and says in answer.json()["message"]
    assert all(len(json.dumps(e)) < 2_000 for e in audit.entries(shares))  # nothing large was logged


def test_the_audit_log_keeps_a_typed_limit_hint(served):  # noqa: F811
    _, shares, _, url, profile, _ = served
    assert query(url, token_of(profile["wujiang"]), b'{"limitHint": 5, "extra": "ignored"}').ok
    logged = [e for e in audit.entries(shares) if e["event"] == "protocol_query"][-1]
    assert logged["detail"]["limit_hint"] == 5 and "extra" not in json.dumps(logged)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {},
            optional={
                "version": st.integers() | st.booleans() | st.text(max_size=5),
                "startingVersion": st.integers(-3, 5) | st.none(),
                "endingVersion": st.integers(-3, 5) | st.none(),
                "limitHint": st.integers() | st.floats(allow_nan=False),
                "timestamp": st.text(max_size=10),
            },
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_no_query_body_makes_the_server_fail(served, body):  # noqa: F811
    _, _, _, url, profile, _ = served
    answer = query(url, token_of(profile["wujiang"]), body)
    assert answer.status_code < 500, (body[:100], answer.status_code, answer.text[:200])
    if answer.status_code >= 400:
        assert set(answer.json()) == {"errorCode", "message"}
