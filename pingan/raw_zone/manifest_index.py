"""A per-feed cache of the committed manifests: reading every committed day costs one listing and one file
per feed, not one object read and parse per day of history (issue 16: a night read 6,467 manifests three
times at two years, 1.7 s each).

The day manifests stay the truth (raw_zone.commit writes them, atomically); the index only caches them and
is checked against the listing on every read. Each entry keeps the stamp the store listed for its manifest
(the S3 ETag, a hash of the content; on disk inode, size and modification time: a commit replaces the file,
so it gets a new inode), and a day whose stamp differs, or that the index lacks, is read from its manifest;
the index is then rewritten. A lost, stale or unreadable index costs a full reading, never a wrong answer.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ValidationError

from pingan.core.storage import Store
from pingan.raw_zone.manifest import Manifest

log = logging.getLogger(__name__)

MANIFESTS = "_manifests/"
INDEX_PREFIX = "_manifest_index/"
INDEX_FORMAT = 1


class IndexEntry(BaseModel):
    stamp: str  # what the store listed for the manifest's key when this copy was read
    manifest: Manifest


class FeedIndex(BaseModel):
    format: int = INDEX_FORMAT
    entries: dict[str, IndexEntry]  # manifest key -> its cached copy


def index_key(feed: str) -> str:
    return f"{INDEX_PREFIX}{feed}.json"


def committed_manifests(lake: Store, feed: str | None = None) -> list[Manifest]:
    """Every committed manifest (of one feed, or all), typed, in feed and load-date order."""
    listed: dict[str, dict[str, str]] = {}
    for key, stamp in lake.list_stamped(f"{MANIFESTS}{feed}/" if feed else MANIFESTS).items():
        parts = key.split("/")
        if len(parts) >= 3 and key.endswith(".json"):
            listed.setdefault(parts[1], {})[key] = stamp
    records = [m for name in sorted(listed) for m in _feed_manifests(lake, name, listed[name])]
    return sorted(records, key=lambda m: (m.feed, m.load_date))


def _feed_manifests(lake: Store, feed: str, listed: dict[str, str]) -> list[Manifest]:
    """One feed's manifests: the index's copies whose stamps still match, the others read (and cached)."""
    cached = _read_index(lake, feed)
    fresh: dict[str, IndexEntry] = {}
    for key, stamp in listed.items():
        entry = cached.get(key)
        if entry is None or entry.stamp != stamp:
            data = lake.get_bytes(key)
            if data is None:  # gone since the listing (a withdrawal)
                continue
            entry = IndexEntry(stamp=stamp, manifest=Manifest.model_validate_json(data))
        fresh[key] = entry
    if fresh.keys() != cached.keys() or any(fresh[k] is not cached[k] for k in fresh):
        # not fsynced: a cache lost in a power cut is rebuilt by the next reading
        data = FeedIndex(entries=fresh).model_dump_json().encode()
        lake.put_bytes(index_key(feed), data, "application/json", durable=False)
    return [e.manifest for e in fresh.values()]


def _read_index(lake: Store, feed: str) -> dict[str, IndexEntry]:
    data = lake.get_bytes(index_key(feed))
    if data is None:
        return {}
    try:
        index = FeedIndex.model_validate_json(data)
    except ValidationError:
        log.warning("manifest index %s unreadable: every manifest of %s is read again", index_key(feed), feed)
        return {}
    return index.entries if index.format == INDEX_FORMAT else {}
