"""What a transport needs for one feed and one logical date, and what it records about its sources."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pingan.core.feed_spec import FeedSpec
from pingan.core.settings import Settings


class SourceMissing(RuntimeError):
    """The source has nothing for this logical date yet (a late feed), as opposed to a broken one."""


@dataclass
class ExtractContext:
    spec: FeedSpec
    logical_date: date
    settings: Settings
    cursor_before: str | None = None  # exclusive lower bound for incremental transports
    sources: list[dict] = field(default_factory=list)  # name, sha256, bytes of everything read

    @property
    def window_start(self) -> datetime:
        return datetime.combine(self.logical_date, time(0), ZoneInfo(self.spec.timezone))

    @property
    def window_end(self) -> datetime:
        """End of the logical day in the feed's zone: the data interval, never 'now'."""
        return self.window_start + timedelta(days=1)

    def record_source(
        self,
        name: str,
        data: bytes | None = None,
        *,
        sha256: str | None = None,
        size: int | None = None,
        **extra,
    ) -> None:
        if data is not None:
            sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        self.sources.append({"name": name, "sha256": sha256, "bytes": size, **extra})


class HashingReader(io.RawIOBase):
    """Wraps a binary stream and hashes what is read, so a source file is read exactly once."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if hasattr(self._raw, "readinto"):  # pyarrow streams fill the buffer directly: no extra copy
            n = self._raw.readinto(buf)
        else:
            data = self._raw.read(len(buf))
            n = len(data)
            buf[:n] = data
        self.sha256.update(memoryview(buf)[:n])
        self.size += n
        return n

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()
