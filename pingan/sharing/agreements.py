"""Sharing agreements: one YAML per partner under agreements/, validated into frozen pydantic models.

An agreement says which datasets a partner receives, built from which warehouse table, which rows (a
filter), and what happens to each column: `keep`, `drop` (named so the decision is on record),
`pseudonymise` (keyed HMAC per partnership), `key_per_partnership` (record ids keyed per partnership,
jurisdiction prefix kept), `coarsen_location` (coordinates rounded to ~1 km), `truncate_to_hour` or
`truncate_to_day` (times coarsened). Record identifiers (`record_id`, `event_id`, `operation_id`,
`*_record_ids`, `source_*_id`) may not be kept as they are: two partnerships receiving the same row
could pair their copies by id. Columns the agreement does not name are never shared. Unknown keys are
errors naming the file and key.

An agreement is in force until `expires_on` (inclusive) and unless `revoked_on` is set and reached;
both are checked against the real date, never against a snapshot's as-of date.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pingan.core.settings import PROJECT_ROOT

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
Treatment = Literal[
    "keep",
    "drop",
    "pseudonymise",
    "key_per_partnership",
    "coarsen_location",
    "truncate_to_hour",
    "truncate_to_day",
]
KEYED_TREATMENTS = ("pseudonymise", "key_per_partnership", "drop")
RECORD_IDENTIFIER = re.compile(r"^(record_id|event_id|operation_id|source_\w*_id|\w*_record_ids?)$")
Scalar = str | bool | int | float


class AgreementError(ValueError):
    """An agreement that cannot be used; the message names the file and the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(Strict):
    """`column = equals`, or `column in [...]`."""

    column: str = Field(pattern=IDENTIFIER)
    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        if (self.equals is None) == (self.in_ is None):
            raise ValueError("a condition needs exactly one of `equals` or `in`")
        return self


class AnyOf(Strict):
    any_of: list[Condition] = Field(min_length=2)


class DatasetGrant(Strict):
    source: str = Field(pattern=IDENTIFIER)  # a table of the published warehouse (marts)
    description: str
    row_filter: list[Annotated[Condition | AnyOf, Field(union_mode="left_to_right")]] = []  # all must hold
    # rows after the as-of date are left out, so a rerun or backfill for a past date shares the same rows
    as_of_column: str | None = Field(None, pattern=IDENTIFIER)
    columns: dict[str, Treatment] = Field(min_length=1)
    # the key_per_partnership column that names one row, when more than one column is keyed (a row's own id
    # beside ids it links to): a night then merges only the changed rows by it (none: the whole table)
    # (left out of the grant's serialisation when unset: the grants' fingerprints, and so the shares' snapshot
    # ids, stay as they were before the field existed)
    row_key: str | None = Field(None, pattern=IDENTIFIER, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _row_key_is_keyed(self) -> DatasetGrant:
        if self.row_key is not None and self.columns.get(self.row_key) != "key_per_partnership":
            keyed = self.columns_treated("key_per_partnership")
            raise ValueError(
                f"row_key {self.row_key!r} must be one of the key_per_partnership columns {keyed}"
            )
        return self

    @property
    def key(self) -> str | None:
        """The column a published row is addressed by: row_key, or the grant's one key_per_partnership
        column; None when there is no such column or several and no row_key names one."""
        keyed = self.columns_treated("key_per_partnership")
        return self.row_key or (keyed[0] if len(keyed) == 1 else None)

    @model_validator(mode="after")
    def _shares_something(self) -> DatasetGrant:
        if all(t == "drop" for t in self.columns.values()):
            raise ValueError("every column is dropped: the dataset would share nothing")
        bad = [c for c in self.columns if not c.isidentifier() or c.lower() != c]
        if bad:
            raise ValueError(f"column names must be lower-case identifiers: {bad}")
        linkable = [
            c for c, t in self.columns.items() if RECORD_IDENTIFIER.match(c) and t not in KEYED_TREATMENTS
        ]
        if linkable:
            raise ValueError(
                f"record identifier(s) {linkable} must be key_per_partnership, pseudonymise or drop: "
                "a raw id lets two partnerships pair their copies of a row"
            )
        return self

    @property
    def shared_columns(self) -> list[str]:
        return [c for c, t in self.columns.items() if t != "drop"]

    def columns_treated(self, treatment: Treatment) -> list[str]:
        return [c for c, t in self.columns.items() if t == treatment]


class Agreement(Strict):
    partner: str = Field(pattern=IDENTIFIER)
    partner_name: str
    jurisdiction_code: str = Field(pattern=r"^\d{6}$")
    framework: str
    version: int = Field(ge=1)
    purpose: str = Field(min_length=10)
    retention_days: int = Field(gt=0)
    # the hub publishes at least this often: a partner's pull warns about an older signed `latest` pointer
    expected_cadence_hours: int = Field(48, gt=0)
    expires_on: date
    revoked_on: date | None = None  # access ends on this day, before expiry (e.g. a partner left)
    schema_name: str = Field("pingan", pattern=IDENTIFIER, alias="schema")  # Delta Sharing schema
    datasets: dict[str, DatasetGrant] = Field(min_length=1)
    path: str = Field("", exclude=True)
    text_sha256: str = Field("", exclude=True)  # of the file as committed, recorded in every manifest

    @model_validator(mode="after")
    def _dataset_names(self) -> Agreement:
        bad = [d for d in self.datasets if not d.isidentifier() or d.lower() != d]
        if bad:
            raise ValueError(f"dataset names must be lower-case identifiers: {bad}")
        return self

    def is_expired(self, on: date) -> bool:
        return on > self.expires_on

    def is_in_force(self, today: date) -> bool:
        """On the real date (never a snapshot's as-of date): not expired and not revoked."""
        return not self.is_expired(today) and (self.revoked_on is None or today < self.revoked_on)

    def ended_why(self, today: date) -> str:
        if self.revoked_on is not None and today >= self.revoked_on:
            return f"revoked on {self.revoked_on}"
        return f"expired on {self.expires_on}"


def default_agreements_dir() -> Path:
    return Path(os.environ.get("PINGAN_AGREEMENTS_DIR", PROJECT_ROOT / "agreements"))


def _format_error(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = (
            "unknown key (not part of the agreement schema)"
            if err["type"] == "extra_forbidden"
            else err["msg"]
        )
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def load_agreement(path: Path) -> Agreement:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AgreementError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise AgreementError(f"{path}: expected a mapping at the top level")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        agreement = Agreement.model_validate({**raw, "path": str(path), "text_sha256": digest})
    except ValidationError as exc:
        raise AgreementError(_format_error(path, exc)) from None
    if agreement.partner != path.stem:
        raise AgreementError(
            f"{path}: partner: {agreement.partner!r} does not match the file name {path.stem!r}"
        )
    return agreement


def load_agreements(directory: Path | None = None) -> dict[str, Agreement]:
    """Every agreement under the directory, keyed by partner."""
    directory = Path(directory or default_agreements_dir())
    agreements = {a.partner: a for a in map(load_agreement, sorted(directory.glob("*.yaml")))}
    if not agreements:
        raise AgreementError(f"{directory}: no agreements found (*.yaml)")
    return agreements
