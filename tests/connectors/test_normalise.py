"""Typed parsing in the normaliser: values that do not fit are quarantined, never silently changed."""

from __future__ import annotations

import pyarrow as pa

from pingan.core.feed_spec import Column
from pingan.ingest.normalise import _parse


def test_integers_outside_int32_are_unparseable_not_wrapped():
    values = pa.array(["5", "3000000000", "-2147483649", "99999999999999999999", "2147483647", None])
    assert _parse(Column(name="hazards_found", type="int"), values, "Asia/Shanghai").to_pylist() == [
        5,
        None,
        None,
        None,
        2147483647,
        None,
    ]


def test_iso_timestamps_with_fractions_and_zones():
    values = pa.array(
        [
            "2024-05-01T10:00:00.5+08:00",
            "2024-05-01T02:00:00Z",
            "2024-05-01T02:00:00.123456Z",
            "not a time",
            None,
        ]
    )
    parsed = _parse(Column(name="reported_at", type="timestamp", format="iso8601"), values, "Asia/Shanghai")
    got = [None if v is None else v.isoformat() for v in parsed.to_pylist()]
    assert got == [
        "2024-05-01T10:00:00.500000+08:00",
        "2024-05-01T10:00:00+08:00",
        "2024-05-01T10:00:00.123456+08:00",
        None,
        None,
    ]
