"""Edits to the simulator's source files that tests use to stage a re-delivery."""

from __future__ import annotations

from datetime import date


def withdraw_first_record(settings, day: date) -> str:
    """Delete the first data line of Qingpu's GB18030 110 export for `day`; returns its record id."""
    path = settings.sim_dir / "qingpu" / "110" / f"110接处警_{day:%Y%m%d}.csv"
    data = path.read_bytes()
    sep = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(sep)
    gone = lines.pop(1).decode("gb18030").split(",")[0]
    path.write_bytes(sep.join(lines))
    return f"310118:{gone}"
