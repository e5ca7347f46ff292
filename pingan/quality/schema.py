"""The batch-level schema rule, checked on the Arrow schema rather than in GX.

Arrow knows the exact types (timestamp unit and zone, int32 vs int64) that pandas blurs, and a batch
with the wrong shape is rejected before GX spends time on it. It also lets the gate hand GX only the
columns the suite reads, which matters because GX's pandas engine re-filters the whole frame for every
expectation.
"""

from __future__ import annotations

import pyarrow as pa

from pingan.core.canonical import entity_schema

RULE = "schema_canonical"


def schema_problems(entity: str, schema: pa.Schema) -> list[str]:
    """Differences between `schema` and the canonical schema of `entity`; empty when they match."""
    expected = entity_schema(entity)
    problems = []
    if len(set(schema.names)) != len(schema.names):
        return [
            f"duplicate columns: {', '.join(sorted({n for n in schema.names if schema.names.count(n) > 1}))}"
        ]
    missing = [n for n in expected.names if n not in schema.names]
    extra = [n for n in schema.names if n not in expected.names]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected columns: {', '.join(extra)}")
    for field in expected:
        if field.name in schema.names and schema.field(field.name).type != field.type:
            problems.append(f"{field.name}: {schema.field(field.name).type}, expected {field.type}")
    return problems
