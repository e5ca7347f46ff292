"""The sharing audit log: hash-chained, append-only, tamper-evident, and a view in the warehouse."""

from __future__ import annotations

import json

import duckdb
import pytest

from pingan.core import audit
from pingan.core.settings import load_settings
from pingan.core.storage import Store


@pytest.fixture
def shares(home):
    store = Store(load_settings().share_url)
    store.ensure()
    return store


def test_entries_chain_to_the_previous_hash(shares):
    first = audit.append(shares, "published", partner="wujiang", dataset="border_incidents", rows=3)
    second = audit.append(shares, "access_granted", partner="jiashan", backend="minio")
    entries = audit.entries(shares)
    assert [e["event"] for e in entries] == ["log_created", "published", "access_granted"]
    assert (first.seq, second.seq) == (1, 2)
    assert entries[2]["prev_hash"] == entries[1]["hash"] == first.hash
    assert audit.verify_chain(shares) == 3


@pytest.mark.parametrize("damage", ["alter", "remove", "rechain"])
def test_an_altered_or_removed_entry_breaks_the_chain(shares, damage):
    for i in range(4):
        audit.append(shares, "protocol_query", partner="wujiang", dataset="border_incidents", version=i)
    key = audit.entry_key(2)
    entry = json.loads(shares.get_bytes(key))
    if damage == "alter":  # someone hides what was queried
        entry["detail"]["version"] = 99
        shares.put_bytes(key, json.dumps(entry).encode())
        match = "entry altered"
    elif damage == "remove":
        shares.delete(key)
        match = "entry 2 is missing"
    else:  # altered and re-hashed: the next entry's link no longer matches
        entry["detail"]["version"] = 99
        entry["hash"] = audit._digest(entry)
        shares.put_bytes(key, json.dumps(entry).encode())
        match = "prev_hash does not match entry 2"
    with pytest.raises(audit.AuditChainError, match=match):
        audit.verify_chain(shares)


def test_an_entry_is_never_overwritten(shares):
    audit.append(shares, "published", partner="wujiang")
    with pytest.raises(audit.AuditChainError, match="already exists"):
        audit._write(shares, audit.entries(shares)[0], "published", "x", None, None, {})


def test_the_log_is_a_view_in_the_warehouse(shares, home, tmp_path):
    settings = load_settings()
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        assert audit.register_warehouse_view(con, settings) == "audit.share_audit_log"
    audit.append(shares, "published", partner="wujiang", dataset="border_incidents", rows=7)
    with duckdb.connect(str(db), read_only=True) as con:  # entries after the build are visible too
        rows = con.sql("select seq, event, partner, (detail->>'rows')::int from audit.share_audit_log "
                       "order by seq").fetchall()  # fmt: skip
    assert rows == [(0, "log_created", None, None), (1, "published", "wujiang", 7)]
