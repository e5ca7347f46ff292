"""Quality results kept in the lake, next to the batches they judge.

    _quality/validations/<feed>/<batch_id>/part-<n>.json   GX validation result of each gate run (SUMMARY)
    _quality/results/<feed>/<batch_id>.json                 one row per rule and stage: what the batch failed

The gate runs GX with COMPLETE results (it needs every failing row), but what is stored is SUMMARY: counts
and GX's sample of 20 values (phones and ID numbers masked), about 30 KB per run instead of megabytes. Data Docs are built from the
stored validations (pingan.quality.data_docs); the warehouse reads the results (fct_quality_results).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from pingan.core.masking import mask_sample
from pingan.core.status import RuleVerdict
from pingan.core.storage import Store
from pingan.raw_zone.manifest import BatchFailure, Manifest

PREFIX = "_quality"
# result keys only COMPLETE carries: one entry per failing row
_COMPLETE_ONLY = ("unexpected_list", "unexpected_index_list", "unexpected_index_query", "unexpected_rows")
READER_RULES = {"wrong_encoding", "malformed_row"}
LOADER_RULES = {"duplicate_record", "conflicting_record", "superseded_by_correction"}


def validation_key(feed: str, batch_id: str, part: int) -> str:
    return f"{PREFIX}/validations/{feed}/{batch_id}/part-{part:03d}.json"


def results_key(feed: str, batch_id: str) -> str:
    return f"{PREFIX}/results/{feed}/{batch_id}.json"


def summary_of(gx_result: Any) -> dict:
    """A GX validation result as SUMMARY: per expectation counts and samples, no per-row lists."""
    data = gx_result.to_json_dict()
    for res in data.get("results", []):
        result = res.get("result") or {}
        for key in _COMPLETE_ONLY:
            result.pop(key, None)
        if result:  # the samples are source values: phones and ID numbers in them are masked (issue 18)
            res["result"] = mask_sample(result)
    return data


def store_validation(lake: Store, feed: str, batch_id: str, part: int, gx_result: Any, meta: dict) -> str:
    data = summary_of(gx_result)
    data.setdefault("meta", {}).update(meta)
    key = validation_key(feed, batch_id, part)
    lake.put_bytes(
        key, json.dumps(data, ensure_ascii=False, default=str).encode(), "application/json", durable=False
    )
    return key


def stage_of(rule: str) -> str:
    """Where in the load a quarantine rule fired: reader, normaliser, loader, gate or batch."""
    if rule.startswith("quality:"):
        return "gate"
    if rule.startswith("batch_blocked"):
        return "batch"
    if rule in READER_RULES:
        return "reader"
    if rule in LOADER_RULES:
        return "loader"
    return "normaliser"


def rows_base(manifest: Manifest) -> dict:
    return {
        "feed": manifest.feed,
        "entity": manifest.entity,
        "jurisdiction_code": manifest.jurisdiction_code,
        "load_date": manifest.load_date.isoformat(),
        "batch_id": manifest.batch_id,
        "status": manifest.status.value,
        "rows_read": manifest.rows_read,
    }


def result_rows(
    manifest: Manifest, gate_rules: dict[str, dict], batch_failures: list[BatchFailure]
) -> list[dict]:
    """One row per rule that quarantined rows, gate rule evaluated, or batch rule failed."""
    base = rows_base(manifest)
    quarantined = Counter(manifest.quarantine_by_rule)
    rows = []
    for rule, outcome in sorted(gate_rules.items()):
        rows.append(
            {
                **base,
                "stage": "gate",
                "rule": rule,
                "severity": outcome["severity"],
                "outcome": outcome["outcome"],
                "rows_failed": outcome["unexpected_count"] or 0,
                "rows_quarantined": quarantined.pop(f"quality:{rule}", 0),
                "cause": None,
            }
        )
    for rule, n in sorted((r, n) for r, n in quarantined.items() if n):
        rows.append(
            {
                **base,
                "stage": stage_of(rule),
                "rule": rule.removeprefix("quality:"),
                "severity": "critical",
                "outcome": RuleVerdict.QUARANTINED.value,
                "rows_failed": n,
                "rows_quarantined": n,
                "cause": None,
            }
        )
    for failure in batch_failures:
        rows.append(
            {
                **base,
                "stage": "batch",
                "rule": failure.rule,
                "severity": "critical",
                "outcome": RuleVerdict.REJECTED.value,
                "rows_failed": manifest.rows_quarantined,
                "rows_quarantined": 0,
                "cause": failure.cause,
            }
        )
    return rows


def store_results(
    lake: Store,
    manifest: Manifest,
    gate_rules: dict[str, dict],
    batch_failures: list[BatchFailure],
    batch_warnings: list[BatchFailure] | None = None,
) -> None:
    """`batch_warnings`: batch-level findings that did not block (a profile check the feed declares
    `warn`, or an accepted day), stored as `warned` rows with their cause."""
    rows = result_rows(manifest, gate_rules, batch_failures)
    rows += [
        {
            **rows_base(manifest),
            "stage": "batch",
            "rule": w.rule,
            "severity": "warning",
            "outcome": RuleVerdict.WARNED.value,
            "rows_failed": 0,
            "rows_quarantined": 0,
            "cause": w.cause,
        }
        for w in batch_warnings or []
    ]
    lake.put_bytes(
        results_key(manifest.feed, manifest.batch_id),
        json.dumps(rows, ensure_ascii=False).encode(),
        "application/json",
        durable=False,
    )


def merge_gate_rules(total: dict[str, dict], verdict_rules) -> None:
    """Add one GX run's rule outcomes to the batch's totals (a batch is gated in parts of 200k rows)."""
    order = {"passed": 0, "warned": 1, "quarantined": 2, "rejected": 3}
    for r in verdict_rules:
        seen = total.setdefault(
            r.rule, {"severity": r.severity, "outcome": "passed", "unexpected_count": 0, "element_count": 0}
        )
        if order[r.outcome] > order[seen["outcome"]]:
            seen["outcome"] = r.outcome
        seen["unexpected_count"] += r.unexpected_count or 0
        seen["element_count"] += r.element_count or 0
