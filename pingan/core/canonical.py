"""The canonical entities of the raw zone: the only shapes the warehouse reads.

Every feed maps its source columns onto one of these. Timestamps are instants stored as
``timestamp[us, tz=Asia/Shanghai]`` (Parquet keeps them UTC-adjusted; DuckDB reads TIMESTAMPTZ).
Harmonised categories are not here: the raw zone keeps the source's own code and dbt maps it
through seeds, so a new mapping never requires reloading the lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

TZ = "Asia/Shanghai"  # the hub's clock: the one zone definition; import TZ or HUB_ZONE from here
HUB_ZONE = ZoneInfo(TZ)
TS = pa.timestamp("us", tz=TZ)

# Lineage columns every canonical row carries, added by the loader, never mapped from a source.
LINEAGE = pa.schema(
    [
        ("record_id", pa.string()),  # <jurisdiction_code>:<source id>, stable across reloads
        ("source_record_id", pa.string()),
        ("jurisdiction_code", pa.string()),
        ("source_feed", pa.string()),
        ("source_file", pa.string()),  # file, object key or request that delivered the row
        ("source_row", pa.int64()),  # 1-based row (line, sheet row, page position) within source_file
        ("batch_id", pa.string()),
        ("load_date", pa.date32()),
        ("ingested_at", TS),
        ("extra_columns", pa.string()),  # JSON of unexpected source columns (schema drift), else null
    ]
)

ENTITY_FIELDS: dict[str, list[tuple[str, pa.DataType]]] = {
    "incident": [
        ("source_category_code", pa.string()),
        ("reported_at", TS),
        ("dispatched_at", TS),
        ("arrived_at", TS),
        ("closed_at", TS),
        ("town", pa.string()),
        ("grid_id", pa.string()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("address", pa.string()),
        ("handling_unit", pa.string()),
        ("disposition", pa.string()),
        ("caller_phone", pa.string()),  # PII
        ("involved_id_numbers", pa.string()),  # PII, ';'-separated resident ID numbers
    ],
    # One row per stage change of a grid event (a dispute or hazard); the warehouse pivots stages.
    "grid_event_stage": [
        ("event_id", pa.string()),  # <jurisdiction_code>:<source event id>
        ("stage", pa.string()),  # discovered|dispatched|verified|handled|closed|feedback|follow_up
        ("stage_at", TS),
        ("source_event_type", pa.string()),
        ("grid_id", pa.string()),
        ("town", pa.string()),
        ("is_cross_border", pa.bool_()),
        ("parties", pa.string()),  # PII, ';'-separated personal names
        ("address", pa.string()),
        ("handling_unit", pa.string()),
    ],
    # One row per registry change; history is kept by (uscc, updated_at).
    "enterprise": [
        ("uscc", pa.string()),
        ("name", pa.string()),
        ("legal_rep_name", pa.string()),  # PII
        ("legal_rep_id_number", pa.string()),  # PII
        ("industry_code", pa.string()),  # GB/T 4754
        ("address", pa.string()),
        ("town", pa.string()),
        ("registration_status", pa.string()),
        ("tax_credit_rating", pa.string()),  # A/B/M/C/D
        ("updated_at", TS),
    ],
    "fire_inspection": [
        ("uscc", pa.string()),
        ("unit_name", pa.string()),
        ("inspected_on", pa.date32()),
        ("hazards_found", pa.int32()),
        ("hazards_rectified", pa.int32()),
        ("rectification_deadline", pa.date32()),
        ("town", pa.string()),
        ("inspector_unit", pa.string()),
        ("updated_at", TS),
    ],
    "fire_alarm": [
        ("device_id", pa.string()),
        ("uscc", pa.string()),
        ("source_alarm_type", pa.string()),
        ("raised_at", TS),
        ("confirmed_at", TS),
        ("handled_at", TS),
        ("is_true_alarm", pa.bool_()),
        ("town", pa.string()),
        ("updated_at", TS),
    ],
    "joint_operation": [
        ("source_mechanism", pa.string()),  # 联查/联管/联调/联防/联宣 as the platform writes it
        ("operation_date", pa.date32()),
        ("jurisdiction_a", pa.string()),
        ("jurisdiction_b", pa.string()),
        ("town_a", pa.string()),
        ("town_b", pa.string()),
        ("location", pa.string()),
        ("units_a", pa.string()),
        ("units_b", pa.string()),
        ("outcome", pa.string()),
        ("linked_record_ids", pa.string()),  # ';'-separated <jurisdiction_code>:<source id>
    ],
}

ENTITIES = tuple(ENTITY_FIELDS)

# Personal data, and what the analysts' tier sees of it (pingan.core.pseudonym; the raw views apply it):
# `pseudonym` one keyed pseudonym, `pseudonym_list` one per ';'-separated element. Exact addresses become a
# keyed pseudonym too: the marts match an incident to an enterprise's registered address by equality and
# place events by town, grid and village, so nothing needs the readable address. Raw values stay in the lake.
PersonalDataTreatment = str  # "pseudonym" | "pseudonym_list"
PERSONAL_DATA: dict[str, dict[str, PersonalDataTreatment]] = {
    "incident": {
        "caller_phone": "pseudonym",
        "involved_id_numbers": "pseudonym_list",
        "address": "pseudonym",
    },
    "grid_event_stage": {"parties": "pseudonym_list", "address": "pseudonym"},
    "enterprise": {
        "legal_rep_name": "pseudonym",
        "legal_rep_id_number": "pseudonym",
        "address": "pseudonym",
    },
}

# How long the restricted tier keeps the raw values behind the pseudonyms, per entity, counted from the
# batch's load date (PIPL art. 19, 47): the pseudonymised facts in the warehouse stay.
PERSONAL_DATA_RETENTION_DAYS: dict[str, int] = {"incident": 180, "grid_event_stage": 365, "enterprise": 1095}


@dataclass(frozen=True)
class Harmonised:
    """The column holding a source's own code, the column dbt fills with its harmonised value, the values."""

    source_column: str
    column: str
    values: tuple[str, ...]


# Every feed of these entities maps each of its codes (feed YAML `code_mapping`) onto one of these values.
HARMONISED: dict[str, Harmonised] = {
    "incident": Harmonised(
        "source_category_code", "category",
        ("criminal", "public_order", "traffic", "assistance", "dispute", "fire", "other"),
    ),
    "grid_event_stage": Harmonised(
        "source_event_type", "event_type", ("dispute", "safety_hazard", "environment", "public_order", "other")
    ),
    "fire_alarm": Harmonised(
        "source_alarm_type", "alarm_type", ("smoke", "heat", "electrical", "water_pressure", "gas", "manual")
    ),
    "joint_operation": Harmonised(
        "source_mechanism", "mechanism",
        ("joint_check", "joint_management", "joint_mediation", "joint_patrol", "joint_publicity"),
    ),
}  # fmt: skip


def entity_schema(entity: str) -> pa.Schema:
    """Lineage columns followed by the entity's own columns: the schema of every raw-zone file."""
    if entity not in ENTITY_FIELDS:
        raise KeyError(f"unknown canonical entity {entity!r}; known: {', '.join(ENTITIES)}")
    return pa.schema(list(LINEAGE) + [pa.field(n, t) for n, t in ENTITY_FIELDS[entity]])


def quarantine_schema() -> pa.Schema:
    """Quarantined rows keep the source values as text, with the rule that rejected them."""
    return pa.schema(
        [
            ("source_record_id", pa.string()),
            ("jurisdiction_code", pa.string()),
            ("source_feed", pa.string()),
            ("source_file", pa.string()),
            ("source_row", pa.int64()),
            ("batch_id", pa.string()),
            ("load_date", pa.date32()),
            ("rule", pa.string()),
            ("column", pa.string()),
            ("value", pa.string()),
            ("record", pa.string()),  # the whole source row as JSON (or raw text when it did not parse)
        ]
    )


def local_today() -> date:
    """Today's date on the hub's clock (Asia/Shanghai): the real day, for expiry and retention, never a
    logical date."""
    return datetime.now(HUB_ZONE).date()
