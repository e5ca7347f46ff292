"""Feed specifications: one YAML per feed under connectors/, validated into frozen pydantic models.

A spec says where a feed comes from (transport), how to read it (format), and how its columns map onto a
canonical entity. Unknown keys are errors, so a typo in a YAML file fails loudly with the file and key.
`connectors/_defaults.yaml` supplies defaults that a feed file may override (deep-merged).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pingan.core.canonical import ENTITY_FIELDS, HARMONISED

DEFAULTS_FILE = "_defaults.yaml"


class SpecError(ValueError):
    """A feed spec that cannot be used; the message names the file and the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- transports ---------------------------------------------------------------------------------------
class FileDrop(Strict):
    """Files dropped in the deployment's landing root (PINGAN_LANDING_URL: a folder or a bucket)."""

    kind: Literal["file_drop", "s3_landing"]
    path: str  # relative to the landing root  # template, `{date:%Y%m%d}` etc. for the logical date; may contain * wildcards


class PagePagination(Strict):
    kind: Literal["page"]
    page_param: str = "page"
    size_param: str = "page_size"
    page_size: int = Field(500, gt=0)
    items_field: str = "data"
    total_pages_field: str = "total_pages"
    total_field: str | None = "total"  # items the whole pull holds, as the first page states it
    page_field: str | None = "page"  # echoed page number, used to detect a repeated page


class CursorPagination(Strict):
    kind: Literal["cursor"]
    cursor_param: str = "cursor"
    limit_param: str = "limit"
    limit: int = Field(1000, gt=0)
    items_field: str = "items"
    next_field: str = "next_cursor"
    total_field: str | None = "total"  # items the whole pull holds, as the first page states it


class RestJson(Strict):
    kind: Literal["rest_json"]
    base_url_env: str  # environment variable holding the base URL
    path: str
    token_env: str | None = None  # name of the secret's environment variable, never the secret
    pagination: Annotated[PagePagination | CursorPagination, Field(discriminator="kind")]
    since_param: str = "since"
    until_param: str = "until"
    timeout_seconds: float = Field(10.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_seconds: float = Field(0.5, ge=0)


class HttpFile(Strict):
    """One file per logical date fetched over HTTP(S) (e.g. CSV from a partner platform)."""

    kind: Literal["http_file"]
    base_url_env: str
    path: str  # template with {date}
    token_env: str | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_seconds: float = Field(0.5, ge=0)


class SqlTable(Strict):
    kind: Literal["sql_table"]
    url_env: str  # environment variable with the SQLAlchemy URL (the deployment supplies it)
    table: str
    chunk_rows: int = Field(50_000, gt=0)


Transport = Annotated[FileDrop | RestJson | HttpFile | SqlTable, Field(discriminator="kind")]


# --- formats ------------------------------------------------------------------------------------------
class Format(Strict):
    kind: Literal["csv", "jsonl", "xlsx", "json"]
    encoding: str = "utf-8"  # gb18030, utf-8-sig, ...
    delimiter: str = ","
    sheet: str | None = None  # xlsx
    block_bytes: int = Field(32 * 1024 * 1024, gt=0)  # csv is read in blocks of about this size


# --- columns ------------------------------------------------------------------------------------------
ColumnType = Literal["string", "int", "float", "boolean", "timestamp", "date"]


class OptionalColumn(Strict):
    """Why a source column may be absent from a delivery without blocking it."""

    reason: str = Field(min_length=10)


class Column(Strict):
    name: str | None = None  # canonical column; None = read only as part of the primary key
    type: ColumnType = "string"
    required: bool = False  # column must exist in the source, and each row must have a value
    format: str | None = None  # strptime format, or `iso8601` for timestamps carrying their offset
    timezone: str | None = None  # zone of naive timestamps; defaults to the spec's timezone
    pii: bool = False
    values: dict[str, str] | None = None  # source value -> canonical value (unlisted values quarantine)
    true_values: list[str] | None = None
    false_values: list[str] | None = None
    prefix_jurisdiction: bool = False  # make an id stable across jurisdictions: <code>:<value>
    # a column the source may leave out of a delivery; without it a missing column blocks the batch
    optional: OptionalColumn | None = None


class Melt(Strict):
    """Turn one wide row into one row per listed source column (e.g. a column per lifecycle stage)."""

    columns: dict[str, str]  # source column -> value placed in `name_column`
    name_column: str  # canonical column receiving the listed value (e.g. stage)
    value_column: str  # canonical column receiving the cell (e.g. stage_at)
    type: ColumnType = "timestamp"
    format: str | None = None


class QualityOverride(Strict):
    mostly: float = Field(ge=0, le=1)
    reason: str = Field(min_length=10)


class CodeMapping(Strict):
    """What one source code means: the harmonised value (see canonical.HARMONISED) and the source's label."""

    category: str
    label: str | None = None


class Freshness(Strict):
    """When a feed counts as stale for a build of logical date D (recorded in the warehouse's feed_freshness).

    The feed is stale when its latest committed load date is more than `max_lag_days` before D;
    `deadline` is the local time on D + 1 by which D's load is due (the nightly build waits until then).
    """

    max_lag_days: int = Field(0, ge=0)
    deadline: str = Field("06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class EmptyDays(Strict):
    """A feed whose source may legitimately deliver nothing for a day; without it an empty day is blocked."""

    reason: str = Field(min_length=10)


# A source field longer than this (UTF-8 bytes) quarantines its row as `oversized_field`, with its line.
MAX_FIELD_BYTES = 64 * 1024


ProfileCheck = Literal[
    "volume", "source_total", "missing_column", "null_share", "new_column", "repeat_content", "event_shift"
]


class ProfilePolicy(Strict):
    """How a delivery is judged against its feed's own history before commit (pingan.quality.profile_checks).

    Defaults live in connectors/_defaults.yaml; a feed file that overrides any of them gives a `reason`."""

    learning_days: int = Field(7, ge=1)  # fewer committed days than this: only the absolute checks
    history_days: int = Field(28, ge=1)  # committed days compared with (the latest ones before the day)
    volume_low: float = Field(0.6, gt=0, le=1)  # rows read below this share of the expected count block
    volume_high: float = Field(3.0, ge=1)  # ... above this multiple of it block
    volume_sigmas: float = Field(4.0, ge=0)  # Poisson noise allowed on top, in standard deviations
    null_share_jump: float = Field(0.3, gt=0, le=1)  # a column's null share above its usual range by this
    repeat_overlap: float = Field(0.5, gt=0, le=1)  # share of record ids already committed on one other day
    repeat_days: int = Field(366, ge=1)  # a delivery's bytes are compared with the committed days this close
    event_column: str | None = None  # canonical time column; default: the first mandatory one
    event_window_days_before: int = Field(60, ge=0)  # event times before the logical date by more quarantine
    event_window_days_after: int = Field(1, ge=0)  # ... or after its end by more
    event_shift_hours: int = Field(5, gt=0)  # the day's events moved by this many hours or more ...
    event_shift_evidence: float = Field(8.0, gt=0)  # ... with this log-likelihood over no move, block
    event_min_rows: int = Field(30, ge=1)  # fewer rows than this: the median is too noisy to judge
    warn: list[ProfileCheck] = []  # checks that only warn for this feed
    reason: str | None = Field(None, min_length=10)  # required when a feed file overrides the defaults


class Corrections(Strict):
    """Re-delivered records (same key, changed values) replace the earlier ones: the latest wins, both
    versions stay in the lake (the replaced one in quarantine as `superseded_by_correction`)."""

    replace_by_key: bool = True
    reason: str = Field(min_length=10)


class Incremental(Strict):
    cursor_column: str  # source column compared with the stored cursor (SQL column, API field)


class FeedSpec(Strict):
    feed: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    jurisdiction_code: str = Field(pattern=r"^\d{6}$")
    entity: str
    description: str
    domain: str
    transport: Transport
    format: Format
    schedule: str = "0 2 * * *"
    timezone: str = "Asia/Shanghai"
    # source columns (or the melt's name column) whose values, joined by ':', are the source record id;
    # record_id is then <jurisdiction_code>:<source record id>
    primary_key: list[str] = Field(min_length=1)
    incremental: Incremental | None = None
    # source code -> harmonised value of the entity's code column (canonical.HARMONISED); a code not
    # listed is a quality failure, never a silent `other`
    code_mapping: dict[str, CodeMapping] | None = None
    freshness: Freshness = Freshness()
    columns: dict[str, Column]
    melt: Melt | None = None
    constants: dict[str, str] = {}  # canonical column -> fixed value for every row of this feed
    ignore_columns: list[str] = []  # source columns known and deliberately not loaded
    quality_overrides: dict[str, QualityOverride] = {}
    empty_days: EmptyDays | None = None  # declared, with a reason, when an empty delivery is normal
    max_field_bytes: int = Field(MAX_FIELD_BYTES, gt=0)
    profile: ProfilePolicy = ProfilePolicy()
    corrections: Corrections | None = (
        None  # without it a conflicting re-delivery is quarantined as `conflict`
    )
    path: str = Field("", exclude=True)
    fingerprint: str = Field("", exclude=True)

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, v: str) -> str:
        if v not in ENTITY_FIELDS:
            raise ValueError(f"unknown entity {v!r}; known: {', '.join(ENTITY_FIELDS)}")
        return v

    @model_validator(mode="after")
    def _columns_fit_entity(self) -> FeedSpec:
        allowed = {n for n, _ in ENTITY_FIELDS[self.entity]}
        targets = [c.name for c in self.columns.values() if c.name]
        if self.melt:
            targets += [self.melt.name_column, self.melt.value_column]
        targets += list(self.constants)
        unknown = sorted(set(targets) - allowed)
        if unknown:
            raise ValueError(f"columns map to {unknown}, which entity {self.entity!r} does not have")
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise ValueError(f"several source columns map to {dupes}")
        keyable = set(self.columns) | ({self.melt.name_column} if self.melt else set())
        missing_pk = [k for k in self.primary_key if k not in keyable]
        if missing_pk:
            raise ValueError(f"primary_key names {missing_pk}, which are not source columns of this spec")
        self._check_code_mapping()
        if self.incremental and self.incremental.cursor_column not in self.columns:
            raise ValueError(
                f"incremental.cursor_column {self.incremental.cursor_column!r} is not a source column"
            )
        return self

    def _check_code_mapping(self) -> None:
        vocabulary = HARMONISED.get(self.entity)
        if self.code_mapping is None:
            if vocabulary is not None:
                raise ValueError(
                    f"entity {self.entity!r} needs a code_mapping onto {sorted(vocabulary.values)}"
                )
            return
        if vocabulary is None:
            raise ValueError(f"entity {self.entity!r} has no harmonised codes; remove code_mapping")
        unknown = {
            code: m.category for code, m in self.code_mapping.items() if m.category not in vocabulary.values
        }
        if unknown:
            raise ValueError(
                f"code_mapping maps {unknown} outside the harmonised values {sorted(vocabulary.values)}"
            )

    def source_column_for(self, canonical: str) -> str | None:
        return next((s for s, c in self.columns.items() if c.name == canonical), None)

    @property
    def required_source_columns(self) -> list[str]:
        return [s for s, c in self.columns.items() if c.required or s in self.primary_key]

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.pii]


# --- loading ------------------------------------------------------------------------------------------
def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _format_error(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the feed spec schema)"
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def load_spec(path: Path, defaults: dict | None = None) -> FeedSpec:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    if isinstance(raw.get("profile"), dict) and not raw["profile"].get("reason"):
        raise SpecError(f"{path}: profile: a feed that overrides the profile tolerances gives a `reason`")
    merged = _deep_merge(defaults or {}, raw)
    fingerprint = hashlib.sha256(
        yaml.safe_dump(merged, sort_keys=True, allow_unicode=True).encode()
    ).hexdigest()
    try:
        spec = FeedSpec.model_validate({**merged, "path": str(path), "fingerprint": fingerprint[:16]})
    except ValidationError as exc:
        raise SpecError(_format_error(path, exc)) from None
    return spec


@dataclass(frozen=True)
class BrokenSpec:
    """A feed file that does not load: its feed fails (naming file and key), the other feeds run."""

    feed: str  # the file's `feed:` when it can be read, else the file name
    path: str
    error: str  # names the file and the key


@dataclass
class SpecSet:
    """The feed specs that load, and the files that do not."""

    specs: dict[str, FeedSpec] = field(default_factory=dict)
    broken: list[BrokenSpec] = field(default_factory=list)


def _feed_id_of(path: Path) -> str:
    """The feed id a broken file means, for naming its failure and its DAG."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raw = None
    feed = raw.get("feed") if isinstance(raw, dict) else None
    if isinstance(feed, str) and re.fullmatch(r"[a-z][a-z0-9_]*", feed):
        return feed
    return path.stem.replace("-", "_")


def load_spec_set(connectors_dir: Path) -> SpecSet:
    """Every feed spec under connectors_dir (recursively), keyed by feed id, and the files that failed to
    load: one bad file fails its own feed, never the others. The defaults file and duplicate ids still fail
    the whole set (they are not one feed's problem)."""
    connectors_dir = Path(connectors_dir)
    defaults_path = connectors_dir / DEFAULTS_FILE
    defaults = yaml.safe_load(defaults_path.read_text(encoding="utf-8")) if defaults_path.exists() else {}
    found = SpecSet()
    for path in sorted(connectors_dir.rglob("*.yaml")):
        if path.name.startswith("_"):
            continue
        try:
            spec = load_spec(path, defaults)
        except SpecError as exc:
            found.broken.append(BrokenSpec(_feed_id_of(path), str(path), str(exc)))
            continue
        if spec.feed in found.specs:
            raise SpecError(
                f"{path}: feed id {spec.feed!r} is already defined in {found.specs[spec.feed].path}"
            )
        found.specs[spec.feed] = spec
    if not found.specs and not found.broken:
        raise SpecError(f"{connectors_dir}: no feed specs found (*.yaml)")
    return found


def load_specs(connectors_dir: Path) -> dict[str, FeedSpec]:
    """Every feed spec under connectors_dir, keyed by feed id; any file that does not load is an error
    (for the stages that need every feed: the build, the PII guard). Ingest uses `load_spec_set`."""
    found = load_spec_set(connectors_dir)
    if found.broken:
        raise SpecError("\n".join(b.error for b in found.broken))
    return found.specs
