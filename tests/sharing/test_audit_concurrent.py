"""Two hosts appending to one audit log at once keep every entry and one unbroken chain.

Each writer is its own process with its own PINGAN_HOME and its own TMPDIR, so the per-host lock file
does not serialise them: only the store's conditional create of the next sequence number does
(S3 `If-None-Match: *` on SeaweedFS, an exclusive link on a shared local directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from pingan.core import audit
from pingan.core.settings import S3Settings
from pingan.core.storage import Store

APPENDS = 200
WRITER = """
import sys
from pingan.core import audit
from pingan.core.settings import load_settings
from pingan.core.storage import share_store

store = share_store(load_settings())
for i in range(int(sys.argv[2])):
    audit.append(store, "protocol_query", partner=sys.argv[1], n=i)
"""


def run_two_hosts(tmp_path, share_env: dict[str, str]) -> None:
    writers = []
    for host in ("hub-a", "hub-b"):
        home, tmp = tmp_path / host / "home", tmp_path / host / "tmp"
        home.mkdir(parents=True)
        tmp.mkdir()
        env = {**os.environ, **share_env, "PINGAN_HOME": str(home), "TMPDIR": str(tmp)}
        writers.append(subprocess.Popen([sys.executable, "-c", WRITER, host, str(APPENDS)], env=env,
                                        stderr=subprocess.PIPE, text=True))  # fmt: skip
    for w in writers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-2000:]


def assert_every_entry_kept(store: Store) -> None:
    entries = audit.entries(store)
    assert audit.verify_chain(store) == len(entries) == 2 * APPENDS + 1  # with log_created
    per_host = Counter(e["partner"] for e in entries if e["event"] == "protocol_query")
    assert per_host == {"hub-a": APPENDS, "hub-b": APPENDS}
    for host in ("hub-a", "hub-b"):  # each host's entries in its own order
        numbers = [e["detail"]["n"] for e in entries if e["partner"] == host]
        assert numbers == list(range(APPENDS))


def test_two_hosts_on_a_shared_directory_keep_every_entry(tmp_path):
    shares = tmp_path / "shared-lake" / "shares"
    run_two_hosts(tmp_path, {"PINGAN_SHARE_URL": shares.as_uri()})
    assert_every_entry_kept(Store(shares.as_uri()))


@pytest.mark.slow
@pytest.mark.s3
def test_two_hosts_on_s3_keep_every_entry(tmp_path, s3_server):
    url = "s3://audit-concurrent/shares"
    s3 = S3Settings(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, False, "us-east-1")
    store = Store(url, s3)
    store.ensure()
    run_two_hosts(tmp_path, {**s3_server.env(), "PINGAN_SHARE_URL": url})
    assert_every_entry_kept(store)


def test_a_taken_sequence_number_is_never_overwritten(tmp_path):
    store = Store((tmp_path / "shares").as_uri())
    audit.append(store, "published", partner="wujiang")
    first = audit.entries(store)[0]
    assert not store.put_if_absent(audit.entry_key(0), b"{}")
    assert audit.entries(store)[0] == first
