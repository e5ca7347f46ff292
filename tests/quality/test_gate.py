"""The gate on canonical batches: complete row failures, quarantine vs rejection, overrides, the manifest."""

from __future__ import annotations

import datetime as dt
import json
import random

import pyarrow as pa
import pytest
from quality_factories import incident_rows, other_entity_rows, resident_id, table

from pingan.core.canonical import ENTITIES, entity_schema
from pingan.quality.gate import validate_batch
from pingan.quality.suites import QualityConfigError


@pytest.fixture(scope="module")
def clean_incidents() -> list[dict]:
    return incident_rows(2000)


def seed_defects(rows: list[dict], seed: int = 3) -> dict[int, str]:
    """Break 50 rows, one rule each (30 bad phones: more than GX's sample of 20); returns row -> rule."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(rows)), 50)
    breakers = [("caller_phone_valid", lambda r: r.update(caller_phone="1281234567"))] * 30 + [
        (
            "involved_id_numbers_valid",
            lambda r: r.update(involved_id_numbers=f"{resident_id()};{resident_id()[:-1]}"),
        ),
        ("coordinates_in_delta", lambda r: r.update(latitude=121.2, longitude=31.1)),
        (
            "incident_times_in_order",
            lambda r: r.update(dispatched_at=r["reported_at"] - dt.timedelta(minutes=3)),
        ),
        ("reported_at_present", lambda r: r.update(reported_at=None, dispatched_at=None)),
        ("town_present", lambda r: r.update(town=None)),
    ] * 4
    expected = {}
    for row_index, (rule, brk) in zip(chosen, breakers, strict=True):
        rows[row_index] = dict(rows[row_index])
        brk(rows[row_index])
        expected[row_index] = rule
    return expected


def test_clean_batch_passes(clean_incidents, suites_dir):
    result = validate_batch("incident", table("incident", clean_incidents), suites_dir=suites_dir)
    assert result.success, result.to_json()
    assert result.row_failures == [] and result.critical_failures == [] and result.warnings == []
    assert result.statistics["rows"] == 2000


def test_seeded_bad_rows_are_returned_exactly(clean_incidents, suites_dir):
    rows = list(clean_incidents)
    expected = seed_defects(rows)
    result = validate_batch("incident", table("incident", rows), suites_dir=suites_dir)

    assert result.success  # 50 of 2000 is under every rule's 5% threshold: quarantine, not rejection
    assert {(f.row_index, f.rule) for f in result.row_failures} == set(expected.items())
    assert result.quarantine_rows == sorted(expected)
    assert result.statistics["rows_quarantined"] == 50
    phone = [f for f in result.row_failures if f.rule == "caller_phone_valid"]
    assert len(phone) == 30 and {f.value for f in phone} == {"1281234567"}
    assert {f.column for f in phone} == {"caller_phone"}
    coords = next(f for f in result.row_failures if f.rule == "coordinates_in_delta")
    assert coords.column == "latitude,longitude" and json.loads(coords.value) == ["121.2", "31.1"]
    outcomes = {r.rule: r for r in result.rules}
    assert outcomes["caller_phone_valid"].outcome == "quarantined"
    assert outcomes["caller_phone_valid"].unexpected_count == 30
    assert outcomes["record_id_unique"].outcome == "passed"


def test_too_many_bad_rows_reject_the_batch(clean_incidents, suites_dir):
    rows = [dict(r, caller_phone="110") if i % 10 == 0 else r for i, r in enumerate(clean_incidents)]
    result = validate_batch("incident", table("incident", rows), suites_dir=suites_dir)
    assert not result.success
    assert result.critical_failures == ["caller_phone_valid"]
    assert len([f for f in result.row_failures if f.rule == "caller_phone_valid"]) == 200  # still reported


def test_override_with_reason_relaxes_the_threshold(clean_incidents, suites_dir):
    rows = [dict(r, caller_phone="110") if i % 10 == 0 else r for i, r in enumerate(clean_incidents)]
    overrides = {
        "caller_phone_valid": {"mostly": 0.85, "reason": "the switchboard logs short codes; ticket 42"}
    }
    result = validate_batch("incident", table("incident", rows), overrides=overrides, suites_dir=suites_dir)
    assert result.success
    assert len(result.quarantine_rows) == 200
    assert result.overrides == overrides
    assert next(r for r in result.rules if r.rule == "caller_phone_valid").mostly == 0.85


def test_feed_spec_overrides_are_accepted(clean_incidents, suites_dir):
    from pingan.core.feed_spec import QualityOverride

    override = QualityOverride(mostly=0.5, reason="partner backfill with known bad phones")
    result = validate_batch(
        "incident",
        table("incident", clean_incidents[:50]),
        overrides={"caller_phone_valid": override},
        suites_dir=suites_dir,
    )
    assert result.success
    assert result.overrides == {"caller_phone_valid": {"mostly": 0.5, "reason": override.reason}}


def test_override_without_reason_is_an_error(clean_incidents, suites_dir):
    with pytest.raises(QualityConfigError, match="'reason' is required"):
        validate_batch(
            "incident",
            table("incident", clean_incidents[:10]),
            overrides={"caller_phone_valid": {"mostly": 0.5}},
            suites_dir=suites_dir,
        )


def test_empty_batch_is_a_critical_failure(suites_dir):
    result = validate_batch("incident", entity_schema("incident").empty_table(), suites_dir=suites_dir)
    assert not result.success
    assert result.critical_failures == ["row_count_positive"]
    assert result.row_failures == []


def test_wrong_schema_is_rejected_before_gx(clean_incidents, suites_dir):
    batch = table("incident", clean_incidents[:10])
    wrong = batch.drop_columns(["town"]).set_column(
        batch.schema.get_field_index("latitude") - 1, "latitude", batch["latitude"].cast(pa.string())
    )
    result = validate_batch("incident", wrong, suites_dir=suites_dir)
    assert not result.success and result.critical_failures == ["schema_canonical"]
    problems = result.rules[0].observed_value
    assert "missing columns: town" in problems and "latitude: string, expected double" in problems


def test_warnings_report_without_quarantine(clean_incidents, suites_dir):
    rows = [dict(r, grid_id=None) if i % 5 == 0 else r for i, r in enumerate(clean_incidents)]
    result = validate_batch("incident", table("incident", rows), suites_dir=suites_dir)
    assert result.success
    assert result.warnings == ["grid_id_present"]
    assert result.row_failures == []


def test_duplicate_record_ids_are_quarantined(clean_incidents, suites_dir):
    rows = [dict(r) for r in clean_incidents[:100]]
    rows[7]["source_record_id"] = rows[3]["source_record_id"] = "DUP"
    result = validate_batch("incident", table("incident", rows), suites_dir=suites_dir)
    assert result.success
    assert [(f.row_index, f.rule, f.value) for f in result.row_failures] == [
        (3, "record_id_unique", "310118:DUP"),
        (7, "record_id_unique", "310118:DUP"),
    ]


@pytest.mark.parametrize("entity", [e for e in ENTITIES if e != "incident"])
def test_clean_batches_of_every_entity_pass(entity, suites_dir):
    jurisdiction = "330482" if entity == "joint_operation" else "310118"
    result = validate_batch(
        entity, table(entity, other_entity_rows(entity), jurisdiction), suites_dir=suites_dir
    )
    assert result.success and result.row_failures == [] and result.warnings == [], result.to_json()


def test_entity_rules_catch_their_defects(suites_dir):
    inspections = other_entity_rows("fire_inspection")
    inspections[4] = dict(inspections[4], hazards_found=1, hazards_rectified=3)
    result = validate_batch("fire_inspection", table("fire_inspection", inspections), suites_dir=suites_dir)
    assert [(f.row_index, f.rule) for f in result.row_failures] == [(4, "rectified_not_above_found")]

    inspections = other_entity_rows("fire_inspection")
    inspections[6] = dict(
        inspections[6], rectification_deadline=dt.date(2025, 2, 20)
    )  # before the inspection
    result = validate_batch("fire_inspection", table("fire_inspection", inspections), suites_dir=suites_dir)
    assert [(f.row_index, f.rule) for f in result.row_failures] == [(6, "deadline_after_inspection")]

    stages = other_entity_rows("grid_event_stage")  # event E0 is rows 0-6, one per stage, an hour apart
    stages[3] = dict(stages[3], stage_at=stages[1]["stage_at"] - dt.timedelta(minutes=5))
    result = validate_batch("grid_event_stage", table("grid_event_stage", stages), suites_dir=suites_dir)
    assert [(f.row_index, f.rule) for f in result.row_failures] == [(3, "event_stages_in_order")]

    operations = other_entity_rows("joint_operation")
    operations[2] = dict(operations[2], source_mechanism="联勤", jurisdiction_b="330482")
    result = validate_batch(
        "joint_operation", table("joint_operation", operations, "330482"), suites_dir=suites_dir
    )
    assert {(f.row_index, f.rule) for f in result.row_failures} == {
        (2, "mechanism_known"),
        (2, "jurisdictions_differ"),
    }


def test_manifest_json(clean_incidents, suites_dir):
    rows = list(clean_incidents[:200])
    rows[5] = dict(rows[5], caller_phone="123")
    result = validate_batch("incident", table("incident", rows), suites_dir=suites_dir)
    manifest = json.loads(result.to_json())
    assert manifest["success"] is True and manifest["entity"] == "incident"
    assert "row_failures" not in manifest  # rows go to quarantine files, not the manifest
    assert {r["rule"] for r in manifest["rules"]} >= {"row_count_positive", "caller_phone_valid"}
    assert manifest["statistics"]["rows_quarantined"] == 1
    with_rows = json.loads(result.to_json(include_rows=True))
    assert with_rows["row_failures"] == [
        {"row_index": 5, "rule": "caller_phone_valid", "column": "caller_phone", "value": "123"}
    ]


def test_source_codes_are_checked_when_the_mapping_is_supplied(clean_incidents, suites_dir):
    rows = [dict(r) for r in clean_incidents[:300]]
    rows[11]["source_category_code"] = "9999"
    batch = table("incident", rows)

    result = validate_batch("incident", batch, suites_dir=suites_dir)
    assert result.skipped_rules == ["source_code_mapped"] and result.row_failures == []

    codes = {"source_codes": ["0101", "0201", "0301"]}
    result = validate_batch("incident", batch, suites_dir=suites_dir, parameters=codes)
    assert result.skipped_rules == []
    assert [(f.row_index, f.rule, f.value) for f in result.row_failures] == [
        (11, "source_code_mapped", "9999")
    ]
