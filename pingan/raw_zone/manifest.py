"""The batch manifest: what one load attempt of a feed and day did, in one shape for every outcome.

The same record is written for a committed batch (`_manifests/` and `_batches/`), a blocked one, a load
that failed or found its source late, and a load still `running` (or killed, then shown `interrupted`).
Fields an outcome does not have keep their empty default, so every reader sees every field.

On disk it is JSON with the field names below (version 1). Manifests written before this model existed
lacked the fields their outcome did not fill (a failure record had no `sources` or `quality`; a commit
had no `error`); they load with those defaults.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pingan.core.status import BatchStatus

MANIFEST_VERSION = 1


class _Part(BaseModel):
    # extra="ignore": a manifest written by a newer version still loads here
    model_config = ConfigDict(frozen=True, extra="ignore")


class BatchFiles(_Part):
    """Lake keys of the batch's Parquet files; `raw` is empty unless the batch is committed."""

    raw: list[str] = Field(default_factory=list)
    quarantine: list[str] = Field(default_factory=list)


class SchemaDrift(_Part):
    new_columns: list[str] = Field(default_factory=list)  # source columns the spec does not know
    missing_columns: list[str] = Field(default_factory=list)  # spec columns the delivery did not have


class BatchFailure(_Part):
    """A rule on the delivery as a whole (too many rows rejected, nothing delivered) and why it fired."""

    rule: str
    cause: str


class QualitySummary(_Part):
    critical_failures: list[str] = Field(default_factory=list)
    warnings: dict[str, int] = Field(default_factory=dict)
    batch_failures: list[BatchFailure] = Field(default_factory=list)
    gate_runs: int = 0  # Great Expectations runs over the batch (one per buffered block of rows)
    findings: list[str] = Field(default_factory=list)  # profile checks that warned, in one line each


class CodeVersion(_Part):
    pingan: str | None = None
    spec_fingerprint: str | None = None


class Manifest(_Part):
    """One load attempt: identity, outcome, row accounting, files, cursors, quality and timing."""

    manifest_version: int = MANIFEST_VERSION
    feed: str
    entity: str
    jurisdiction_code: str
    load_date: date
    batch_id: str
    status: (
        BatchStatus  # running | committed | blocked | failed | late (`interrupted` is derived, never written)
    )
    error: str | None = None  # why a blocked, failed or late attempt did not commit
    sources: list[dict[str, Any]] = Field(default_factory=list)  # name, sha256, bytes of everything read
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    quarantine_by_rule: dict[str, int] = Field(default_factory=dict)
    files: BatchFiles = Field(default_factory=BatchFiles)
    schema_fingerprint: str | None = None
    schema_drift: SchemaDrift = Field(default_factory=SchemaDrift)
    cursor_before: str | None = None
    cursor_after: str | None = None
    quality: QualitySummary = Field(default_factory=QualitySummary)
    code_version: CodeVersion = Field(default_factory=CodeVersion)
    host: str | None = None  # of a `running` attempt: with pid, tells a live load from a killed one
    pid: int | None = None
    started_at: str | None = None  # ISO instants as written (kept as text: readers compare the strings)
    finished_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls.model_validate(data)

    def to_json(self) -> dict[str, Any]:
        """The dict written to the lake (and handed to readers that still take dicts)."""
        return self.model_dump(mode="json")

    @property
    def balanced(self) -> bool:
        """Every record read is either written or quarantined."""
        return self.rows_read == self.rows_written + self.rows_quarantined
