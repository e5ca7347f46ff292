"""The suite files: one per canonical entity, valid GX suites, every expectation tagged, columns real."""

from __future__ import annotations

import json

import pytest

from pingan.core.canonical import ENTITIES, entity_schema
from pingan.quality.suites import (
    QualityConfigError,
    apply_overrides,
    load_suite,
    referenced_columns,
    rules_of,
)

BATCH_LEVEL = {"expect_table_row_count_to_be_between"}


@pytest.mark.parametrize("entity", ENTITIES)
def test_suite_loads_into_gx(entity, suites_dir):
    from great_expectations.core import ExpectationSuite

    import pingan.quality.custom_expectations  # noqa: F401  our types must be registered first

    raw = json.loads((suites_dir / f"{entity}.json").read_text(encoding="utf-8"))
    suite = ExpectationSuite(**raw)
    assert suite.name == entity
    assert len(suite.expectations) == len(raw["expectations"])
    for exp, spec in zip(suite.expectations, raw["expectations"], strict=True):
        assert exp.expectation_type == spec["type"]
        assert exp.meta == spec["meta"]
        assert exp.severity.value == spec["meta"]["severity"]


@pytest.mark.parametrize("entity", ENTITIES)
def test_suite_rules(entity, suites_dir):
    suite = load_suite(entity, suites_dir)  # checks rule names and severities
    rules = rules_of(suite)
    assert rules["row_count_positive"]["meta"]["severity"] == "critical"
    assert rules["record_id_unique"]["meta"]["severity"] == "critical"
    assert "record_id_present" in rules and "source_record_id_present" in rules
    for rule, exp in rules.items():
        if exp["type"] not in BATCH_LEVEL:
            assert "mostly" in exp["kwargs"], f"{entity}.{rule}: row-level rules need a quarantine threshold"
    assert set(referenced_columns(suite)) <= set(entity_schema(entity).names)


def test_domain_rules_are_present(suites_dir):
    incident = rules_of(load_suite("incident", suites_dir))
    assert incident["reported_at_present"]["kwargs"]["column"] == "reported_at"
    assert incident["involved_id_numbers_valid"]["kwargs"]["separator"] == ";"
    assert incident["coordinates_in_delta"]["kwargs"]["min_latitude"] == 27.0
    stage = rules_of(load_suite("grid_event_stage", suites_dir))["stage_known"]["kwargs"]["value_set"]
    assert {"discovered", "closed", "feedback", "follow_up"} <= set(stage)
    rating = rules_of(load_suite("enterprise", suites_dir))["tax_credit_rating_known"]["kwargs"]["value_set"]
    assert rating == ["A", "B", "M", "C", "D"]
    mechanisms = rules_of(load_suite("joint_operation", suites_dir))["mechanism_known"]["kwargs"]["value_set"]
    assert mechanisms == ["联查", "联管", "联调", "联防", "联宣"]
    fire = rules_of(load_suite("fire_inspection", suites_dir))["rectified_not_above_found"]["kwargs"]
    assert (fire["column_A"], fire["column_B"]) == ("hazards_found", "hazards_rectified")


def _write(tmp_path, expectations):
    (tmp_path / "incident.json").write_text(json.dumps({"name": "incident", "expectations": expectations}))
    return tmp_path


@pytest.mark.parametrize(
    "expectations,message",
    [
        (
            [
                {
                    "type": "expect_table_row_count_to_be_between",
                    "kwargs": {},
                    "meta": {"severity": "critical"},
                }
            ],
            "rule",
        ),
        (
            [
                {
                    "type": "expect_table_row_count_to_be_between",
                    "kwargs": {},
                    "meta": {"rule": "x", "severity": "low"},
                }
            ],
            "severity",
        ),
        (
            [{"type": "t", "kwargs": {}, "meta": {"rule": "x", "severity": "warning"}}] * 2,
            "used twice",
        ),
        ([], "non-empty"),
    ],
)
def test_bad_suite_files_are_rejected(tmp_path, expectations, message):
    with pytest.raises(QualityConfigError, match=message):
        load_suite("incident", _write(tmp_path, expectations))


def test_suite_file_missing(tmp_path):
    with pytest.raises(QualityConfigError, match="no expectation suite"):
        load_suite("incident", tmp_path)


def test_override_replaces_mostly_on_a_copy(suites_dir):
    suite = load_suite("incident", suites_dir)
    relaxed = apply_overrides(suite, {"caller_phone_valid": {"mostly": 0.8, "reason": "switchboard numbers"}})
    assert rules_of(relaxed)["caller_phone_valid"]["kwargs"]["mostly"] == 0.8
    assert rules_of(suite)["caller_phone_valid"]["kwargs"]["mostly"] == 0.95
    assert rules_of(load_suite("incident", suites_dir))["caller_phone_valid"]["kwargs"]["mostly"] == 0.95


@pytest.mark.parametrize(
    "override,message",
    [
        ({"caller_phone_valid": {"mostly": 0.8}}, "reason"),
        ({"caller_phone_valid": {"mostly": 0.8, "reason": "  "}}, "reason"),
        ({"caller_phone_valid": {"mostly": 1.5, "reason": "typo"}}, "between 0 and 1"),
        ({"caller_phone_valid": {"mostly": "high", "reason": "typo"}}, "between 0 and 1"),
        ({"caller_phone_valid": {"mostly": 0.8, "reason": "x", "until": "2026"}}, "keys"),
        ({"no_such_rule": {"mostly": 0.8, "reason": "typo"}}, "no such rule"),
        ({"row_count_positive": {"mostly": 0.8, "reason": "empty days"}}, "batch-level"),
    ],
)
def test_bad_overrides(suites_dir, override, message):
    with pytest.raises(QualityConfigError, match=message):
        apply_overrides(load_suite("incident", suites_dir), override)
