"""The sharing audit log: append-only, each entry chained to the previous one's hash, queryable in DuckDB.

It lives in the share store under `audit/log/` (a prefix no partner credential can read), one JSON object
per entry named by its sequence number, so local disk and S3 behave alike:

    audit/log/0000000000.json   {"seq": 0, "event": "log_created", ..., "prev_hash": "", "hash": "…"}
    audit/log/0000000001.json   {"seq": 1, "event": "published", ..., "prev_hash": "<hash of 0>", ...}

`hash` is the SHA-256 of the entry's canonical JSON without `hash`, which includes `prev_hash`: altering,
removing or reordering an entry breaks every later link, and `verify_chain` names the first broken one.
Events: published, removed_retention, withdrawn (latest pointer of an ended agreement), skipped_ended,
pii_guard_blocked, tamper_detected, access_granted, access_removed, protocol_query, protocol_denied.
An entry is created only if its sequence number is free (S3 `If-None-Match: *`, an exclusive link on
local disk), so writers on several hosts sharing the store keep every entry and one unbroken chain: the
one that loses the race re-reads the end and takes the next number. Writers on one host also share a
lock file, which saves them the retries.
Values are identifiers, counts and dates, never personal data or secrets.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

from pingan.core.storage import Store, share_store

PREFIX = "audit/log/"
VIEW = "share_audit_log"
# the columns every entry has; event-specific values sit in `detail` (a JSON object)
COLUMNS = {
    "seq": "BIGINT",
    "at": "TIMESTAMPTZ",
    "event": "VARCHAR",
    "partner": "VARCHAR",
    "dataset": "VARCHAR",
    "snapshot_id": "VARCHAR",
    "detail": "JSON",
    "prev_hash": "VARCHAR",
    "hash": "VARCHAR",
}


class AuditChainError(RuntimeError):
    """The audit log was altered: the message names the first entry that does not chain."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    event: str
    hash: str


@dataclass(frozen=True)
class Witness:
    """A head of the log (an entry's sequence and hash) held outside the log, e.g. signed in a partner's
    copy: the log must still hold that entry with that hash (Certificate Transparency's signed tree head)."""

    source: str  # who holds it, for the message: "partner wujiang's share", "the copy at /path"
    seq: int
    hash: str
    signed_at: str


def entry_key(seq: int) -> str:
    return f"{PREFIX}{seq:010d}.json"


def _digest(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def _encode(entry: dict) -> bytes:
    return (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


@contextlib.contextmanager
def _writer_lock(store: Store) -> Iterator[None]:
    """One writer at a time on this host (publish, provisioning and the share server may run together)."""
    name = hashlib.sha256(store.url.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"pingan-audit-{name}.lock"
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


HEAD = "audit/head.json"  # the last entry's seq and hash: appending needs no listing of the whole log


def _last(store: Store) -> dict | None:
    head = store.get_bytes(HEAD)
    if head is None:
        keys = [k for k in store.list(PREFIX) if k.endswith(".json")]
        if not keys:
            return None
        last = json.loads(store.get_bytes(keys[-1]))
    else:
        seq = json.loads(head)["seq"]
        data = store.get_bytes(entry_key(seq))
        if data is None:
            raise AuditChainError(f"{store.uri(entry_key(seq))}: the last entry is missing (log altered)")
        last = json.loads(data)
    # a writer that stopped between its entry and the head: follow the entries written after the head
    while (following := store.get_bytes(entry_key(last["seq"] + 1))) is not None:
        last = json.loads(following)
    return last


class EntryTaken(AuditChainError):
    """Another writer created this sequence number first: read the new last entry and try again."""


# Writers on several hosts race for the next sequence number; the loser of a conditional create re-reads
# the log's end and tries the number after it (a short random pause spreads the retries).
def _retrying() -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(EntryTaken),
        stop=stop_after_attempt(500),
        wait=wait_random(0, 0.02),
        reraise=True,
    )


def append(
    store: Store,
    event: str,
    *,
    partner: str | None = None,
    dataset: str | None = None,
    snapshot_id: str | None = None,
    **detail,
) -> AuditEntry:
    """Add one entry after the current last one; returns its sequence number and hash."""
    with _writer_lock(store):
        entry = _retrying()(_append_once, store, event, partner, dataset, snapshot_id, detail)
    return AuditEntry(entry["seq"], event, entry["hash"])


def _append_once(store, event, partner, dataset, snapshot_id, detail) -> dict:
    last = _last(store)
    if last is None and event != "log_created":
        last = _write(store, None, "log_created", None, None, None, {})
    return _write(store, last, event, partner, dataset, snapshot_id, detail)


def _write(store, last, event, partner, dataset, snapshot_id, detail) -> dict:
    """Create entry last.seq + 1 (never overwriting one: EntryTaken if another writer was first)."""
    seq = 0 if last is None else last["seq"] + 1
    entry = {
        "seq": seq,
        "at": datetime.now(UTC).isoformat(),
        "event": event,
        "partner": partner,
        "dataset": dataset,
        "snapshot_id": snapshot_id,
        "detail": json.loads(json.dumps(detail, default=str)),
        "prev_hash": "" if last is None else last["hash"],
    }
    entry["hash"] = _digest(entry)
    key = entry_key(seq)
    if not store.put_if_absent(key, _encode(entry), "application/json"):
        raise EntryTaken(f"{store.uri(key)}: entry {seq} already exists (another writer appended first)")
    # a hint for the next writer; it may lag behind when hosts race, and _last follows the entries after it
    store.put_bytes(HEAD, _encode({"seq": seq, "hash": entry["hash"]}), "application/json")
    return entry


def ensure_log(store: Store) -> None:
    """Create the log with its first entry if it is empty (so it can always be queried)."""
    with _writer_lock(store), contextlib.suppress(EntryTaken):  # another writer created it: as good
        if _last(store) is None:
            _write(store, None, "log_created", None, None, None, {})


def entries(store: Store) -> list[dict]:
    return [json.loads(store.get_bytes(k)) for k in store.list(PREFIX) if k.endswith(".json")]


def head(store: Store) -> AuditEntry | None:
    """The last entry (sequence, event, hash), or None for an empty log."""
    last = _last(store)
    return None if last is None else AuditEntry(last["seq"], last["event"], last["hash"])


def verify_witnessed(store: Store, witnesses: list[Witness]) -> int:
    """verify_chain, then completeness: every witnessed head is still in the log with the same hash.
    A deleted log, a deleted tail (with or without head.json) and a tail rewritten with recomputed
    hashes each raise one line naming the witness. Entries after the newest witness are unwitnessed."""
    items = entries(store)
    newest = max(witnesses, key=lambda w: w.seq, default=None)
    if not items and newest is not None:
        raise AuditChainError(
            f"{store.uri(PREFIX)}: the audit log was deleted: it holds no entries, but {newest.source} "
            f"holds its signed head at entry {newest.seq} (signed {newest.signed_at})"
        )
    count = verify_chain(store, items)
    for witness in sorted(witnesses, key=lambda w: -w.seq):
        if witness.seq >= count:
            raise AuditChainError(
                f"{store.uri(PREFIX)}: the audit log was truncated: it ends at entry {count - 1}, but "
                f"{witness.source} holds its signed head at entry {witness.seq} (signed {witness.signed_at})"
            )
        if items[witness.seq]["hash"] != witness.hash:
            raise AuditChainError(
                f"{store.uri(entry_key(witness.seq))}: the audit log was rewritten: entry {witness.seq} is "
                f"not the one whose hash {witness.source} holds (signed {witness.signed_at})"
            )
    return count


def verify_chain(store: Store, items: list[dict] | None = None) -> int:
    """The number of entries, after checking every hash and link; raises on the first break."""
    previous = ""
    items = entries(store) if items is None else items
    for expected_seq, entry in enumerate(items):
        where = f"{store.uri(entry_key(expected_seq))}"
        if entry.get("seq") != expected_seq:
            raise AuditChainError(f"{where}: entry {expected_seq} is missing (found seq {entry.get('seq')})")
        if entry.get("prev_hash") != previous:
            raise AuditChainError(f"{where}: prev_hash does not match entry {expected_seq - 1}")
        if _digest(entry) != entry.get("hash"):
            raise AuditChainError(f"{where}: content does not match its hash (entry altered)")
        previous = entry["hash"]
    return len(items)


def register_warehouse_view(con, settings) -> str:
    """The one call `warehouse.build` makes: the audit log of this deployment's share store, as a view."""
    return register_audit_view(con, share_store(settings))


def register_audit_view(con, shares: Store, schema: str = "audit") -> str:
    """A DuckDB view over the audit log (`audit.share_audit_log`); it reads the log when queried.

    For an s3:// share store the session needs an S3 secret (`Store.duckdb_setup`), as for `raw.*`.
    """
    shares.ensure()
    ensure_log(shares)
    shares.duckdb_setup(con)
    columns = ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS.items())
    glob = shares.uri(PREFIX.rstrip("/")) + "/*.json"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(
        f"CREATE OR REPLACE VIEW {schema}.{VIEW} AS SELECT * FROM read_json('{glob}', "
        f"format = 'newline_delimited', columns = {{{columns}}})"
    )
    return f"{schema}.{VIEW}"
