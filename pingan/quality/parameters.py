"""Suite parameters taken from reference data, so a suite file can say "a code of this feed's mapping".

The incident, grid event, fire alarm and joint operation suites check `source_code_mapped` against the
`source_codes` parameter: the source codes the feed's mapping table (a feed YAML's `code_mapping`) lists
in dbt/seeds/category_mappings.csv. An unmapped code is a quality failure, never a silent `other`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pingan.quality.suites import QualityConfigError

MAPPINGS_SEED = Path("seeds") / "category_mappings.csv"


def suite_parameters(code_mapping: str | None, dbt_dir: Path) -> dict[str, list[str]]:
    """`{"source_codes": [...]}` for a feed's mapping table; empty when the feed maps no codes."""
    if code_mapping is None:
        return {}
    path = Path(dbt_dir) / MAPPINGS_SEED
    with path.open(encoding="utf-8", newline="") as f:
        codes = sorted(
            {row["source_code"] for row in csv.DictReader(f) if row["mapping_table"] == code_mapping}
        )
    if not codes:
        raise QualityConfigError(f"{path}: no rows for mapping_table {code_mapping!r}")
    return {"source_codes": codes}
