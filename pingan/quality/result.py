"""What the gate tells its caller: the verdict on a batch, the rows to quarantine, and a manifest record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from pingan.core.status import RuleVerdict


class RowFailure(NamedTuple):
    """One row failing one critical row-level rule; `value` is the offending value as text (None if null)."""

    row_index: int  # 0-based position in the validated table
    rule: str
    column: str  # `a,b` for rules over a pair or list of columns
    value: str | None


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    severity: str
    expectation_type: str
    column: str | None
    outcome: RuleVerdict
    unexpected_count: int | None = None  # rows failing (row-level rules only)
    element_count: int | None = None
    mostly: float | None = None  # the threshold applied, after overrides
    observed_value: Any = None  # batch-level rules, e.g. the row count
    exception: str | None = None  # GX could not evaluate the rule (missing column, wrong type)


@dataclass
class GateResult:
    entity: str
    success: bool  # no critical failure: the batch may be committed, minus `quarantine_rows`
    critical_failures: list[str]
    warnings: list[str]
    row_failures: list[RowFailure]
    statistics: dict[str, Any]
    rules: list[RuleOutcome]
    overrides: dict[str, dict] = field(default_factory=dict)
    skipped_rules: list[str] = field(default_factory=list)  # their suite parameters were not supplied
    gx_result: Any = field(default=None, repr=False, compare=False)  # for Data Docs; not serialised

    @property
    def quarantine_rows(self) -> list[int]:
        """Rows to move to quarantine when the batch passes: every row failing a critical row-level rule."""
        return sorted({f.row_index for f in self.row_failures})

    def to_dict(self, include_rows: bool = False) -> dict[str, Any]:
        """The manifest record; row failures are summarised per rule unless include_rows (they can be many)."""
        out = {
            "entity": self.entity,
            "success": self.success,
            "critical_failures": self.critical_failures,
            "warnings": self.warnings,
            "statistics": self.statistics,
            "rules": [asdict(r) for r in self.rules],
            "overrides": self.overrides,
            "skipped_rules": self.skipped_rules,
        }
        if include_rows:
            out["row_failures"] = [f._asdict() for f in self.row_failures]
        return out

    def to_json(self, include_rows: bool = False) -> str:
        return json.dumps(self.to_dict(include_rows), ensure_ascii=False, default=str, sort_keys=True)
