"""The event-window stage: rows whose event time is implausibly far from the logical date go to quarantine.

A feed's window is `profile.event_window_days_before` days before its logical date to
`profile.event_window_days_after` days after the day's end, in the feed's zone (connectors/_defaults.yaml,
overridable per feed with a reason). A row outside it (a year typed as 2035, a clock reset to 1970) is
quarantined as `event_time_outside_window` with its value; a whole delivery outside it is then blocked by
the rows_accepted batch rule. A feed whose event time is its incremental cursor has no window here: the
cursor bounds what is read, and a first pull legitimately reads the source's whole history.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.canonical import quarantine_schema
from pingan.core.feed_spec import FeedSpec
from pingan.ingest.normalise import BatchInfo, quarantine_canonical
from pingan.quality.profile import day_start, event_column

RULE = "event_time_outside_window"


class EventWindow:
    """Splits canonical rows into those inside the feed's window and quarantine records of the rest."""

    def __init__(self, spec: FeedSpec, info: BatchInfo) -> None:
        self._spec, self._info = spec, info
        self.column = event_column(spec)
        cursor = spec.columns[spec.incremental.cursor_column].name if spec.incremental else None
        if self.column == cursor:  # the transport's cursor already bounds it (and a first pull reads history)
            self.column = None
        start = day_start(spec, info.load_date).astimezone(UTC)
        p = spec.profile
        self.earliest = start - timedelta(days=p.event_window_days_before)
        self.latest = start + timedelta(days=1 + p.event_window_days_after)

    def split(self, good: pa.Table) -> tuple[pa.Table, pa.Table]:
        if self.column is None or self.column not in good.column_names or not good.num_rows:
            return good, quarantine_schema().empty_table()
        values = good[self.column]
        if pa.types.is_date(values.type):
            values = pc.assume_timezone(values.cast(pa.timestamp("s")), self._spec.timezone)
        ts = values.cast(pa.timestamp("us", tz="UTC"))
        lo = pa.scalar(self.earliest, pa.timestamp("us", tz="UTC"))
        hi = pa.scalar(self.latest, pa.timestamp("us", tz="UTC"))
        outside = pc.fill_null(pc.or_(pc.less(ts, lo), pc.greater_equal(ts, hi)), False)
        if not pc.any(outside).as_py():
            return good, quarantine_schema().empty_table()
        bad = good.filter(outside)
        n = bad.num_rows
        quarantined = quarantine_canonical(
            bad,
            self._spec,
            self._info,
            rules=pa.array([RULE] * n),
            columns=pa.array([self.column] * n),
            values=bad[self.column].cast(pa.string()).combine_chunks(),
        )
        return good.filter(pc.invert(outside)), quarantined
