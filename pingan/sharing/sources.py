"""What fills a granted dataset: an agreement may only grant rows some feed under connectors/ delivers.

A grant on a fact table whose rows come from one canonical entity is filled by that entity's feeds; a row
filter on `jurisdiction_code` narrows them to the feeds of those jurisdictions. A grant nothing fills would
publish a signed, empty snapshot every night, which a partner cannot tell from "nothing happened"; it is
refused instead, naming the agreement file and the dataset. Marts that mix entities (mart_cross_border) are
not judged here: some of their rows come from more than one entity.
"""

from __future__ import annotations

from dataclasses import dataclass

from pingan.core.feed_spec import FeedSpec
from pingan.sharing.agreements import Agreement, AnyOf, DatasetGrant

# fact tables of the warehouse and the one canonical entity each is built from (dbt/models/marts/*/fct_*.sql)
FACT_ENTITY = {
    "fct_incidents": "incident",
    "fct_grid_events": "grid_event_stage",
    "fct_joint_operations": "joint_operation",
    "fct_fire_inspections": "fire_inspection",
    "fct_fire_alarms": "fire_alarm",
}


@dataclass(frozen=True)
class UnfilledGrant:
    """A granted dataset no feed fills."""

    agreement_path: str
    partner: str
    dataset: str
    source: str
    entity: str
    jurisdictions: tuple[str, ...]  # the grant's jurisdiction_code filter; () when it has none
    feeding: tuple[str, ...]  # jurisdictions that do have a feed of the entity

    def describe(self) -> str:
        wanted = f" of jurisdiction(s) {', '.join(self.jurisdictions)}" if self.jurisdictions else ""
        have = ", ".join(self.feeding) or "none"
        return (
            f"{self.agreement_path}: dataset {self.dataset}: no feed under connectors/ delivers "
            f"{self.entity} rows{wanted} for {self.source} (jurisdictions with a {self.entity} feed: {have}); "
            "grant only what a feed fills"
        )


def granted_jurisdictions(grant: DatasetGrant) -> set[str] | None:
    """The jurisdiction codes a grant's row filter keeps (top-level conditions all hold); None = any."""
    kept: set[str] | None = None
    for item in grant.row_filter:
        if isinstance(item, AnyOf) or item.column != "jurisdiction_code":
            continue
        codes = {str(item.equals)} if item.in_ is None else {str(c) for c in item.in_}
        kept = codes if kept is None else kept & codes
    return kept


def unfilled_grants(agreements: dict[str, Agreement], specs: dict[str, FeedSpec]) -> list[UnfilledGrant]:
    """Every granted dataset of these agreements that no feed of `specs` fills."""
    found = []
    for agreement in agreements.values():
        for name, grant in sorted(agreement.datasets.items()):
            entity = FACT_ENTITY.get(grant.source)
            if entity is None:
                continue
            feeding = sorted({s.jurisdiction_code for s in specs.values() if s.entity == entity})
            wanted = granted_jurisdictions(grant)
            if feeding and (wanted is None or wanted & set(feeding)):
                continue
            found.append(
                UnfilledGrant(
                    agreement.path,
                    agreement.partner,
                    name,
                    grant.source,
                    entity,
                    tuple(sorted(wanted or ())),
                    tuple(feeding),
                )  # fmt: skip
            )
    return found
