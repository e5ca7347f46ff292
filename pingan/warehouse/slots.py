"""The published warehouse is a symlink to one of two files that take turns, so a build never copies it.

`warehouse.duckdb -> warehouse.a.duckdb`: a build writes `warehouse.b.duckdb`, the file published two builds
ago, which the batch plan (pingan/warehouse/inputs.py) brings up to date whatever it missed, then swaps the
link atomically. Copying the published file every night would cost time in proportion to the history.

- A reader holding a file open keeps reading it. If a reader still holds the spare (it connected two builds
  ago), the build starts from a fresh copy of the published file instead of writing under the reader.
- A marker file says a slot is being written; a slot found with its marker (a build that crashed or failed)
  is never built upon: it is set aside as `<slot>.failed.duckdb` for inspection and replaced by a copy.
- A published path that is a plain file (an older layout) is treated as the current slot.
- Each slot records its generation (`<slot>.generation`): a full refresh starts a new one, a copy takes the
  current file's. A spare of another generation (built before the last full refresh, e.g. by models a
  deployment has since changed) is never built upon: incremental models would keep its old rows, with
  null in a column the new models add. The build after a full refresh starts from a copy instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slots:
    published: Path

    def slot(self, name: str) -> Path:
        return self.published.with_name(f"{self.published.stem}.{name}{self.published.suffix}")

    def current(self) -> Path | None:
        """The file analysts read now, or None before the first build."""
        if self.published.is_symlink():
            return self.published.resolve()
        return self.published if self.published.exists() else None

    def spare(self) -> Path:
        a, b = self.slot("a"), self.slot("b")
        return b if self.current() == a else a

    def marker(self, slot: Path) -> Path:
        return slot.with_name(slot.name + ".building")


def prepare(slots: Slots, *, full_refresh: bool) -> Path:
    """The slot to build in: the spare as it is when it is clean, free and of the current file's generation,
    else a copy of the current file."""
    spare, current = slots.spare(), slots.current()
    if full_refresh or current is None:
        _remove(spare)
        _write_generation(spare, uuid.uuid4().hex)
    elif _stale(slots, spare, current):
        if slots.marker(spare).exists():
            _set_aside(spare)
        _remove(spare)  # a reader keeps its (now unlinked) file
        shutil.copyfile(current, spare)
        _write_generation(spare, generation(current) or _new_generation(current))
    slots.marker(spare).touch()
    return spare


def _stale(slots: Slots, spare: Path, current: Path) -> bool:
    if not spare.exists() or slots.marker(spare).exists():
        return True
    if generation(spare) is None or generation(spare) != generation(current):
        log.info(
            "%s is of another generation than %s (a full refresh since): building on a copy", spare, current
        )
        return True
    return _locked(spare)


def generation(slot: Path) -> str | None:
    """The slot's generation (None: written before slots recorded one)."""
    path = _generation_file(slot)
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def _new_generation(current: Path) -> str:
    """A generation for a current file that has none (an older layout), recorded beside it."""
    new = uuid.uuid4().hex
    _write_generation(current, new)
    return new


def _write_generation(slot: Path, value: str) -> None:
    _generation_file(slot).write_text(value + "\n", encoding="utf-8")


def _generation_file(slot: Path) -> Path:
    return slot.with_name(slot.name + ".generation")


def publish(slots: Slots, slot: Path) -> None:
    """Point the published path at `slot` in one rename: readers see the old file or the new one."""
    link = slots.published.with_name(f".{slots.published.name}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(slot.name)
    os.replace(link, slots.published)
    slots.marker(slot).unlink(missing_ok=True)


def discard(slots: Slots, slot: Path) -> None:
    """After a failed build: keep the slot for inspection, out of the way of the next build."""
    _set_aside(slot)
    slots.marker(slot).unlink(missing_ok=True)


def _set_aside(slot: Path) -> None:
    if slot.exists():
        failed = slot.with_name(f"{slot.stem}.failed{slot.suffix}")
        os.replace(slot, failed)
        log.warning("an unfinished build's file was set aside: %s", failed)
    slot.with_name(slot.name + ".wal").unlink(missing_ok=True)


def _remove(slot: Path) -> None:
    for p in (slot, slot.with_name(slot.name + ".wal"), _generation_file(slot)):
        p.unlink(missing_ok=True)


def _locked(slot: Path) -> bool:
    """A reader (another process) holds the file: DuckDB would refuse us its write lock."""
    try:
        duckdb.connect(str(slot)).close()
    except duckdb.IOException:
        return True
    return False
