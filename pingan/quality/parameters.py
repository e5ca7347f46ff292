"""Suite parameters taken from the feed spec, so a suite file can say "a code of this feed's mapping".

The incident, grid event, fire alarm and joint operation suites check `source_code_mapped` against the
`source_codes` parameter: the source codes listed in the feed YAML's `code_mapping`. An unmapped code is
a quality failure, never a silent `other`.
"""

from __future__ import annotations

from pingan.core.feed_spec import FeedSpec


def suite_parameters(spec: FeedSpec) -> dict[str, list[str]]:
    """`{"source_codes": [...]}` for a feed that maps codes; empty when it maps none."""
    if not spec.code_mapping:
        return {}
    return {"source_codes": sorted(spec.code_mapping)}
