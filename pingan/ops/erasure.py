"""`pingan subject erase|correct`: one person's data removed or corrected everywhere the hub holds it.

In order: the lake (raw and quarantine files, pingan.ops.erasure_lake), the restricted store and every
warehouse file (pingan.ops.erasure_stores), then the partner shares, republished and their older Delta
versions cut (pingan.ops.erasure_shares). One audit entry (`subject_erased` / `subject_corrected`) says how
many rows and files each place had, with the request's reason and who asked; it names the person only by
a reference key (an HMAC under the hub key, apart from the pseudonyms), never by a value.

A rerun finds nothing left and audits that (all counts zero): a request interrupted half-way is finished
by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pingan.core import audit
from pingan.core.pseudonym import load_hub_key, normalise
from pingan.core.settings import Settings
from pingan.core.storage import Store
from pingan.ops.erasure_lake import change_lake
from pingan.ops.erasure_shares import change_shares
from pingan.ops.erasure_stores import change_restricted, change_warehouse, warehouse_files
from pingan.ops.subject import SubjectRequest

EVENTS = {"erase": "subject_erased", "correct": "subject_corrected"}


class SubjectRequestError(ValueError):
    """A request that cannot be carried out as given (no identifier, no reason, a correction to itself)."""


@dataclass(frozen=True)
class SubjectReport:
    event: str
    counts: dict  # place -> counts (rows, files, datasets); what the audit entry holds
    audit_seq: int

    @property
    def found(self) -> int:
        """Rows and share datasets that held the person (0: nothing held them)."""
        rows = [c["rows"] for c in self.counts.values() if isinstance(c, dict) and "rows" in c]
        return sum(rows) + len(self.counts["shares"]["datasets"])


def check_request(request: SubjectRequest) -> None:
    if not request.identifiers or not all(normalise(k) for k in request.identifiers):
        raise SubjectRequestError("name the person: --id-number or --phone")
    if not request.reason.strip():
        raise SubjectRequestError("a request needs a --reason (it goes to the audit log)")
    if request.action == "correct":
        if len(request.identifiers) != 1:
            raise SubjectRequestError(
                "correct one identifier at a time: one --id-number or --phone with --to"
            )
        ((old, new),) = request.identifiers.items()
        if new is None or normalise(new) == normalise(old) or not normalise(new):
            raise SubjectRequestError("--to must be a different, non-empty value")


def carry_out(
    settings: Settings, lake: Store, shares: Store, request: SubjectRequest, today: date | None = None
) -> SubjectReport:
    """Erase or correct the person everywhere, then write the one audit entry."""
    check_request(request)
    hub_key = load_hub_key(settings)
    raw, pseudonyms = request.raw_change(), request.pseudonym_change(hub_key)
    lake_counts = change_lake(lake, raw)
    restricted_rows = change_restricted(settings, raw, pseudonyms)
    warehouse = {
        path.name: change_warehouse(path, request.both(hub_key)) for path in warehouse_files(settings)
    }
    share_counts = change_shares(settings, lake, shares, pseudonyms, today)
    counts = {
        "lake_raw": {"rows": lake_counts.rows["raw"], "files": lake_counts.files["raw"]},
        "lake_quarantine": {"rows": lake_counts.rows["quarantine"], "files": lake_counts.files["quarantine"]},
        "lake_batches_recommitted": lake_counts.batches,
        "restricted_store": {"rows": restricted_rows},
        "warehouse": {"rows": sum(warehouse.values()), "files": sorted(warehouse)},
        "shares": {
            "datasets": share_counts.datasets,
            "republished": share_counts.republished,
            "older_files_deleted": share_counts.files_deleted,
            "older_snapshots_deleted": share_counts.snapshots_deleted,
        },
    }
    entry = audit.append(
        shares, EVENTS[request.action], subject_refs=request.reference(hub_key), identifier_count=len(request.identifiers),
        reason=request.reason, by=request.by, counts=counts,
    )  # fmt: skip
    return SubjectReport(EVENTS[request.action], counts, entry.seq)
