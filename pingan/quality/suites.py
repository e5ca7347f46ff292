"""Suite files (`expectations/<entity>.json`, GX's own suite format) and per-feed threshold overrides.

Plain JSON handling, no Great Expectations import: a bad suite file or a bad override fails fast, before
the seconds GX takes to load. Every expectation carries `meta: {severity, rule}`; rule names are the
stable handles that quarantine records, manifests and feed YAML overrides refer to.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

from pingan.quality.batch_rules import BATCH_RULES

SEVERITIES = ("critical", "warning")
OVERRIDE_KEYS = {"mostly", "reason"}


class QualityConfigError(ValueError):
    """A suite file or an override that cannot be applied; the message names the file or rule."""


def suite_path(entity: str, suites_dir: Path) -> Path:
    return Path(suites_dir) / f"{entity}.json"


def load_suite(entity: str, suites_dir: Path) -> dict:
    """The suite of `entity` as GX suite JSON, checked for our metadata. Returns a copy: mutate freely."""
    path = suite_path(entity, suites_dir).resolve()
    if not path.is_file():
        raise QualityConfigError(f"{path}: no expectation suite for entity {entity!r}")
    return copy.deepcopy(_load_checked(path, path.stat().st_mtime_ns))


@lru_cache(maxsize=64)
def _load_checked(path: Path, mtime_ns: int) -> dict:  # mtime in the key: an edited file is re-read
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise QualityConfigError(f"{path}: not valid JSON: {exc}") from exc
    expectations = suite.get("expectations") if isinstance(suite, dict) else None
    if not isinstance(expectations, list) or not expectations:
        raise QualityConfigError(f"{path}: expected a GX suite with a non-empty 'expectations' list")
    seen: set[str] = set()
    for i, exp in enumerate(expectations):
        meta = exp.get("meta") or {}
        rule, severity = meta.get("rule"), meta.get("severity")
        where = f"{path}: expectations[{i}] ({exp.get('type')})"
        if not isinstance(rule, str) or not rule:
            raise QualityConfigError(f"{where}: meta.rule is missing")
        if rule in seen:
            raise QualityConfigError(f"{where}: rule {rule!r} is used twice")
        if severity not in SEVERITIES:
            raise QualityConfigError(f"{where}: meta.severity must be one of {SEVERITIES}, not {severity!r}")
        if exp.get("severity", severity) != severity:  # GX's own field, shown in Data Docs, must agree
            raise QualityConfigError(f"{where}: severity {exp['severity']!r} disagrees with meta.severity")
        seen.add(rule)
    return suite


def rules_of(suite: dict) -> dict[str, dict]:
    return {exp["meta"]["rule"]: exp for exp in suite["expectations"]}


def plain_overrides(overrides: dict | None) -> dict[str, dict]:
    """Overrides as plain dicts; a FeedSpec's `quality_overrides` (pydantic models) are accepted as is."""
    return {
        rule: o.model_dump() if hasattr(o, "model_dump") else (dict(o) if isinstance(o, dict) else o)
        for rule, o in (overrides or {}).items()
    }


def apply_overrides(suite: dict, overrides: dict | None) -> dict:
    """A copy of `suite` with each overridden rule's `mostly` replaced.

    An override must name a rule of the suite that has a `mostly` threshold (row-level rules; batch-level
    ones such as the row count have none) and must give a reason: a relaxed gate needs a written why.
    """
    if not overrides:
        return suite
    suite = copy.deepcopy(suite)
    rules = rules_of(suite)
    for rule, override in plain_overrides(overrides).items():
        if rule in BATCH_RULES:  # judged by the loader over the whole delivery (pingan.quality.batch_rules)
            continue
        where = f"quality override for rule {rule!r} of suite {suite.get('name')!r}"
        if rule not in rules:
            raise QualityConfigError(f"{where}: no such rule; known: {', '.join(sorted(rules))}")
        if not isinstance(override, dict) or set(override) - OVERRIDE_KEYS:
            raise QualityConfigError(f"{where}: expected a mapping with keys {sorted(OVERRIDE_KEYS)}")
        reason = override.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise QualityConfigError(f"{where}: a 'reason' is required to relax a quality threshold")
        mostly = override.get("mostly")
        if isinstance(mostly, bool) or not isinstance(mostly, int | float) or not 0 <= mostly <= 1:
            raise QualityConfigError(f"{where}: 'mostly' must be a number between 0 and 1, not {mostly!r}")
        kwargs = rules[rule]["kwargs"]
        if "mostly" not in kwargs:
            raise QualityConfigError(f"{where}: the rule is batch-level and has no 'mostly' threshold")
        kwargs["mostly"] = float(mostly)
    return suite


def referenced_columns(suite: dict) -> list[str]:
    """The columns the suite's expectations read, in first-use order."""
    seen: dict[str, None] = {}
    for exp in suite["expectations"]:
        kwargs = exp.get("kwargs", {})
        for key in ("column", "column_A", "column_B"):
            if key in kwargs:
                seen[kwargs[key]] = None
        for column in kwargs.get("column_list") or []:
            seen[column] = None
    return list(seen)


def parameters_needed(expectation: dict) -> set[str]:
    """Names of the GX suite parameters (`{"$PARAMETER": name}`) an expectation's kwargs refer to."""
    return {
        v["$PARAMETER"]
        for v in expectation.get("kwargs", {}).values()
        if isinstance(v, dict) and "$PARAMETER" in v
    }


def bind_parameters(suite: dict, parameters: dict[str, object] | None) -> tuple[dict, list[str]]:
    """The suite without the rules whose parameters are not supplied, and those rules' names.

    GX fails the whole run on a missing parameter; a caller that cannot supply one (no code mapping for
    a feed yet) gets the other rules, and the skipped ones are reported rather than silently dropped.
    """
    supplied = set(parameters or {})
    keep, skipped = [], []
    for exp in suite["expectations"]:
        (keep if parameters_needed(exp) <= supplied else skipped).append(exp)
    return {**suite, "expectations": keep}, [exp["meta"]["rule"] for exp in skipped]
