"""The quality gate: validate one canonical batch with its entity's GX suite, before it reaches the raw zone.

Policy, per expectation (`meta.severity` in the suite file):
- batch-level rules that fail reject the batch when critical: the row count in the suite, and the
  schema (column names and Arrow types, rule `schema_canonical`), which the gate checks itself;
- row-level rules (column map, pair and multicolumn expectations) that are critical do not reject the
  batch for a few bad rows: those rows are returned in `row_failures` for quarantine and the rest
  proceeds. Only when more than (1 - mostly) of the rows fail does the rule reject the batch, because
  then the feed is broken rather than a few records. `mostly` comes from the suite, or a feed override;
- warnings never reject and never quarantine; they are reported when their threshold is breached;
- a rule GX could not evaluate (missing column, wrong type) counts as failed.

Great Expectations is imported on the first call, not when this module is imported.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pingan.core.status import RuleVerdict
from pingan.quality.batch_rules import max_rejected_share
from pingan.quality.result import GateResult, RowFailure, RuleOutcome
from pingan.quality.schema import RULE as SCHEMA_RULE
from pingan.quality.schema import schema_problems
from pingan.quality.suites import (
    apply_overrides,
    bind_parameters,
    load_suite,
    plain_overrides,
    referenced_columns,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def validate_batch(
    entity: str,
    table: pa.Table,
    *,
    overrides: dict[str, Any] | None = None,
    suites_dir: Path,
    parameters: dict[str, Any] | None = None,
) -> GateResult:
    """Run the suite of `entity` on `table` and decide: commit, commit minus quarantined rows, or reject.

    `overrides` are a feed's `quality_overrides` ({rule: {mostly, reason}}, dicts or the FeedSpec's
    models). `parameters` fill the suite's `$PARAMETER`s (see pingan.quality.parameters); rules that
    need one not given are skipped and listed in `skipped_rules`.
    """
    suite = apply_overrides(load_suite(entity, suites_dir), overrides)  # fails fast, before GX loads
    suite, skipped = bind_parameters(suite, parameters)
    overrides = plain_overrides(overrides)
    problems = schema_problems(entity, table.schema)
    if problems:
        return _schema_rejected(entity, table, problems, overrides, skipped)

    from pingan.quality import gx_runtime

    gx_runtime.validation_definition(suite)  # the first call in a process loads GX: not batch time
    started = time.perf_counter()
    # only the columns the suite reads: GX's pandas engine copies the whole frame per expectation
    df = table.select(referenced_columns(suite)).to_pandas()  # RangeIndex: row index = position in table
    converted = time.perf_counter()
    gx_result = gx_runtime.run(suite, df, parameters)
    validated = time.perf_counter()
    judged = _judge_all(gx_result.results, df)
    timings = {
        "to_pandas_seconds": round(converted - started, 3),
        "gx_seconds": round(validated - converted, 3),
    }
    return GateResult(
        entity=entity,
        success=not judged.critical,
        critical_failures=judged.critical,
        warnings=judged.warnings,
        row_failures=judged.row_failures,
        statistics=_statistics(table.num_rows, judged.row_failures, gx_result.statistics, timings),
        rules=judged.rules,
        overrides=overrides,
        skipped_rules=skipped,
        gx_result=gx_result,
    )


@dataclass
class _Judged:
    """Every rule's outcome on a batch, sorted into what blocks it, what warns and which rows fail."""

    rules: list[RuleOutcome] = field(default_factory=list)
    critical: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    row_failures: list[RowFailure] = field(default_factory=list)


def _judge_all(results: list, df: pd.DataFrame) -> _Judged:
    judged = _Judged()
    for res in results:
        outcome, failures = _judge(res, df)
        judged.rules.append(outcome)
        judged.row_failures.extend(failures)
        if outcome.outcome == RuleVerdict.REJECTED:
            judged.critical.append(outcome.rule)
        elif outcome.outcome == RuleVerdict.WARNED:
            judged.warnings.append(outcome.rule)
    judged.row_failures.sort()
    return judged


def _statistics(rows: int, row_failures: list[RowFailure], stats: dict, timings: dict) -> dict:
    return {
        "rows": rows,
        "rows_quarantined": len({f.row_index for f in row_failures}),
        "evaluated_expectations": stats["evaluated_expectations"],
        "successful_expectations": stats["successful_expectations"],
        "unsuccessful_expectations": stats["unsuccessful_expectations"],
        **timings,
    }


def _schema_rejected(
    entity: str, table: pa.Table, problems: list[str], overrides: dict, skipped: list[str]
) -> GateResult:
    outcome = RuleOutcome(
        rule=SCHEMA_RULE,
        severity="critical",
        expectation_type="pingan_schema_matches_canonical",
        column=None,
        outcome=RuleVerdict.REJECTED,
        observed_value=problems,
    )
    return GateResult(
        entity=entity,
        success=False,
        critical_failures=[SCHEMA_RULE],
        warnings=[],
        row_failures=[],
        statistics={"rows": table.num_rows, "rows_quarantined": 0, "evaluated_expectations": 0},
        rules=[outcome],
        overrides=overrides,
        skipped_rules=skipped,
    )


def _columns(kwargs: dict) -> list[str]:
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return list(kwargs.get("column_list") or [])


def _exception(res: Any) -> str | None:
    info = res.exception_info or {}
    # GX reports either one exception or one per failed metric, keyed by metric id
    infos = [info] if "raised_exception" in info else [i for i in info.values() if isinstance(i, dict)]
    messages = [i.get("exception_message") or "error" for i in infos if i.get("raised_exception")]
    return "; ".join(messages) or None


def _within_noise(mostly: float | None, result: dict, row_level: bool) -> bool:
    """A row-level rule GX failed on a small batch, but by no more than sampling noise allows: one bad ID
    among ten filled values is 10%, not a broken feed. The same allowance as the batch rule
    `rows_accepted` (1 - mostly plus three standard errors for the values checked)."""
    if not row_level or mostly is None:
        return False
    checked = (result.get("element_count") or 0) - (result.get("missing_count") or 0)
    if checked <= 0:
        return False
    return (result.get("unexpected_count") or 0) / checked <= max_rejected_share(float(mostly), checked)


def _judge(res: Any, df: pd.DataFrame) -> tuple[RuleOutcome, list[RowFailure]]:
    config = res.expectation_config
    rule, severity = config.meta["rule"], config.meta["severity"]
    columns = _columns(config.kwargs)
    result = res.result or {}
    exception = _exception(res)
    row_level = "unexpected_index_list" in result
    indices = [int(i) for i in result.get("unexpected_index_list") or []]

    if exception or (not res.success and not _within_noise(config.kwargs.get("mostly"), result, row_level)):
        verdict = RuleVerdict.REJECTED if severity == "critical" else RuleVerdict.WARNED
    elif indices and severity == "critical":
        verdict = RuleVerdict.QUARANTINED
    else:
        verdict = RuleVerdict.PASSED
    outcome = RuleOutcome(
        rule=rule,
        severity=severity,
        expectation_type=config.type,
        column=",".join(columns) or None,
        outcome=verdict,
        unexpected_count=result.get("unexpected_count") if row_level else None,
        element_count=result.get("element_count"),
        mostly=config.kwargs.get("mostly"),
        observed_value=result.get("observed_value"),
        exception=exception,
    )
    if not (row_level and indices and severity == "critical"):
        return outcome, []
    return outcome, _row_failures(rule, columns, indices, df)


def _row_failures(rule: str, columns: list[str], indices: list[int], df: pd.DataFrame) -> list[RowFailure]:
    # values are read back from the batch rather than zipped with GX's unexpected_list, whose shape
    # differs per expectation kind (scalars, pairs, dicts)
    values = [[_text(v) for v in df[c].iloc[indices].tolist()] for c in columns if c in df.columns]
    column = ",".join(columns)
    if len(values) == 1:
        texts = values[0]
    else:
        texts = [json.dumps(list(row), ensure_ascii=False) for row in zip(*values, strict=True)]
    return [RowFailure(i, rule, column, t) for i, t in zip(indices, texts, strict=True)]


def _text(value: Any) -> str | None:
    import pandas as pd

    if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
