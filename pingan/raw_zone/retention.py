"""Superseded batches stay readable until no build can still read them.

A build reads a fixed set of committed batches from start to end (its views name their files). A rerun of
a day commits a new batch while a build may still be reading the old one, so the old batch's files are not
deleted at the rerun's commit. Two guards decide when they go:

- a **lease** per running build, `_builds/<build id>.json`, naming every batch the build reads. It is taken
  before the build opens any file and released when the build ends; a lease whose process is gone (same
  host) or whose time ran out (`expires_at`, for a build on another host that died) no longer counts;
- a **retention window** after the batch was superseded (`PINGAN_SUPERSEDED_RETENTION_MINUTES`, default
  60), covering a build that listed the committed batches just before the rerun and has not yet written
  its lease.

`_superseded/<feed>/<batch id>.json` records each superseded batch (its file prefixes and when it was
superseded). `sweep` deletes those past the window that no live lease names; it runs after every commit
and after every build.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from pingan.core.storage import Store

log = logging.getLogger(__name__)

LEASES = "_builds/"
SUPERSEDED = "_superseded/"
DEFAULT_RETENTION = timedelta(minutes=60)
LEASE_TTL = timedelta(hours=12)  # longer than any build; only matters for a build that died on another host


@dataclass(frozen=True)
class BuildLease:
    """A running build and the batches it reads."""

    build_id: str
    host: str
    pid: int
    started_at: str
    expires_at: str
    batch_ids: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{LEASES}{self.build_id}.json"

    def is_live(self, now: datetime) -> bool:
        if datetime.fromisoformat(self.expires_at) <= now:
            return False
        return self.host != socket.gethostname() or process_alive(self.pid)


@dataclass(frozen=True)
class SupersededBatch:
    """A batch a rerun replaced: its files wait here until no build can still read them."""

    feed: str
    batch_id: str
    prefixes: list[str]
    superseded_at: str

    @property
    def key(self) -> str:
        return f"{SUPERSEDED}{self.feed}/{self.batch_id}.json"


def process_alive(pid: int) -> bool:
    """A process of this host with that id still runs (a lease's or a load record's owner)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _put(lake: Store, key: str, obj) -> None:
    lake.put_bytes(key, json.dumps(asdict(obj), sort_keys=True, indent=2).encode(), "application/json")


def _read_all(lake: Store, prefix: str) -> Iterator[tuple[str, dict]]:
    for key in lake.list(prefix):
        data = lake.get_bytes(key) if key.endswith(".json") else None
        if data is not None:
            yield key, json.loads(data)


@contextlib.contextmanager
def build_lease(lake: Store, batch_ids: Iterable[str], *, ttl: timedelta = LEASE_TTL) -> Iterator[BuildLease]:
    """Hold a lease on `batch_ids` for the duration of a build; released however the build ends."""
    now = datetime.now(UTC)
    lease = BuildLease(
        build_id=f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=now.isoformat(),
        expires_at=(now + ttl).isoformat(),
        batch_ids=sorted(set(batch_ids)),
    )
    _put(lake, lease.key, lease)
    try:
        yield lease
    finally:
        lake.delete(lease.key)


def live_leases(lake: Store, now: datetime | None = None) -> list[BuildLease]:
    """Leases of builds still running; a dead build's lease is removed on the way."""
    now = now or datetime.now(UTC)
    out = []
    for key, data in _read_all(lake, LEASES):
        lease = BuildLease(**data)
        if lease.is_live(now):
            out.append(lease)
        else:
            log.info(
                "lease %s of a build no longer running (host %s, pid %s) removed", key, lease.host, lease.pid
            )
            lake.delete(key)
    return out


def mark_superseded(lake: Store, feed: str, batch_id: str, prefixes: list[str]) -> None:
    """Record that a rerun replaced `batch_id` (kept from the first time it was seen superseded)."""
    record = SupersededBatch(feed, batch_id, prefixes, datetime.now(UTC).isoformat())
    if not lake.exists(record.key):
        _put(lake, record.key, record)


def pending(lake: Store, feed: str | None = None) -> list[SupersededBatch]:
    """Superseded batches whose files are still in the lake."""
    prefix = f"{SUPERSEDED}{feed}/" if feed else SUPERSEDED
    return [SupersededBatch(**data) for _, data in _read_all(lake, prefix)]


def sweep(
    lake: Store,
    *,
    feed: str | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    now: datetime | None = None,
) -> int:
    """Delete the files of superseded batches past the retention window that no running build reads.
    Returns how many files were deleted."""
    waiting = pending(lake, feed)
    if not waiting:
        return 0
    now = now or datetime.now(UTC)
    leased = {b for lease in live_leases(lake, now) for b in lease.batch_ids}
    removed = 0
    for batch in waiting:
        if batch.batch_id in leased or datetime.fromisoformat(batch.superseded_at) + retention > now:
            continue
        removed += sum(lake.delete_prefix(p) for p in batch.prefixes)
        lake.delete(batch.key)
    return removed


@contextlib.contextmanager
def reading_batches(
    lake: Store | None, batch_ids: Iterable[str], *, retention: timedelta = DEFAULT_RETENTION
) -> Iterator[None]:
    """What a build wraps itself in: a lease on its batches while it runs, then a sweep of what it no longer
    holds back. Without a lake (batches given by a test as plain files) there is nothing to lease."""
    if lake is None:
        yield
        return
    with build_lease(lake, batch_ids):
        yield
    sweep(lake, retention=retention)
