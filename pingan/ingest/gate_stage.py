"""The gate stage: normalised rows are buffered and validated by the quality gate in blocks, then handed on.

A Great Expectations run costs about a second whatever its size, so rows are gated GATE_ROWS at a time
(bounding memory while keeping runs few). Rows a row-level expectation rejects leave the block for
quarantine; critical failures, warnings and per-rule results accumulate in `GateOutcome` for the manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.feed_spec import FeedSpec
from pingan.core.settings import Settings
from pingan.core.storage import Store
from pingan.ingest.normalise import BatchInfo, quarantine_canonical
from pingan.quality import results_store, stage_history

GATE_ROWS = 200_000  # rows gated per GX run: bounds memory while keeping GX runs few


@dataclass
class GateOutcome:
    """What the gate said about the whole batch, over all its runs."""

    critical: set[str] = field(default_factory=set)
    warnings: Counter[str] = field(default_factory=Counter)
    rules: dict[str, dict] = field(default_factory=dict)  # per expectation, merged over runs
    runs: int = 0


@dataclass(frozen=True)
class GatedBlock:
    """Rows that passed the gate, and quarantine records of those a row-level expectation rejected."""

    good: pa.Table
    rejected: pa.Table | None = None


class GateStage:
    """Buffers rows and gates them in blocks; without a gate every pushed table passes through at once."""

    def __init__(
        self, gate: Callable | None, spec: FeedSpec, info: BatchInfo, lake: Store, settings: Settings
    ):
        self._gate, self._spec, self._info, self._lake, self._settings = gate, spec, info, lake, settings
        self._buffered: list[pa.Table] = []
        self._buffered_rows = 0
        self.outcome = GateOutcome()

    def push(self, good: pa.Table) -> GatedBlock | None:
        """Buffer `good`; a block is returned when the buffer is full (or at once, without a gate)."""
        self._buffered.append(good)
        self._buffered_rows += good.num_rows
        if self._gate is None or self._buffered_rows >= GATE_ROWS:
            return self.flush()
        return None

    def flush(self) -> GatedBlock | None:
        """Gate whatever is buffered in one run."""
        if not self._buffered:
            return None
        good = pa.concat_tables(self._buffered)
        self._buffered, self._buffered_rows = [], 0
        if self._gate is None or not good.num_rows:
            return GatedBlock(good)
        failures = self._validate(good)
        if not failures:
            return GatedBlock(good)
        passed, rejected = split_row_failures(good, sorted(failures), self._spec, self._info)
        return GatedBlock(passed, rejected)

    def _validate(self, good: pa.Table) -> list[tuple]:
        """One gate run over a block: record its verdict, return its row failures (index, rule, column, value)."""
        spec, info = self._spec, self._info
        verdict = self._gate(spec, good)
        self.outcome.critical.update(verdict.critical_failures)
        self.outcome.warnings.update(verdict.warnings)
        results_store.merge_gate_rules(self.outcome.rules, verdict.rules)
        if verdict.gx_result is not None:
            results_store.store_validation(
                self._lake,
                spec.feed,
                info.batch_id,
                self.outcome.runs,
                verdict.gx_result,
                {"feed": spec.feed, "load_date": info.load_date.isoformat(), "batch_id": info.batch_id},
            )
        self.outcome.runs += 1
        failures = list(verdict.row_failures)
        if spec.entity == stage_history.ENTITY:
            failures += stage_history.stage_order_failures(
                self._lake, spec.feed, info.load_date, good, self._settings.expectations_dir
            )
        return failures


def split_row_failures(
    good: pa.Table, failures, spec: FeedSpec, info: BatchInfo
) -> tuple[pa.Table, pa.Table]:
    """Rows a row-level expectation rejected leave the batch for quarantine, with the first rule that caught them."""
    first: dict[int, tuple] = {}
    for idx, rule, column, value in failures:
        first.setdefault(int(idx), (rule, column, value))
    idx = sorted(first)
    mask = pc.is_in(pa.array(range(good.num_rows)), pa.array(idx))
    bad = good.take(pa.array(idx, pa.int64()))
    q = quarantine_canonical(
        bad,
        spec,
        info,
        rules=pa.array([f"quality:{first[i][0]}" for i in idx]),
        columns=pa.array([first[i][1] for i in idx], pa.string()),
        values=pa.array([None if first[i][2] is None else str(first[i][2]) for i in idx], pa.string()),
    )
    return good.filter(pc.invert(mask)), q
