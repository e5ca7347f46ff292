"""Map a chunk of source text onto its canonical entity: rename, parse, check, or quarantine with a reason.

Vectorised with pyarrow compute; Python loops touch only the rows that fail. A row fails on the first
column (in spec order) that is missing when required, does not parse as its type, or holds a value the
spec's value mapping does not know. Unexpected source columns are kept as JSON in `extra_columns`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from pingan.core.canonical import TS, entity_schema, quarantine_schema
from pingan.core.feed_spec import Column, FeedSpec
from pingan.ingest.chunk import Reject, SourceChunk
from pingan.quality.identifiers import looks_personal
from pingan.quality.text_cleaning import (
    CONTROL_CHARACTER,
    OVERSIZED_FIELD,
    clean_identifiers,
    control_character_mask,
    identifier_columns,
    oversized_mask,
    shorten_record,
    shortened,
)

MELT_NAME, MELT_VALUE = "__melt_name", "__melt_value"
DEFAULT_TRUE = ["true", "t", "1", "yes", "y", "是"]
DEFAULT_FALSE = ["false", "f", "0", "no", "n", "否"]
_INT_RE = r"^[-+]?\d{1,18}$"  # fits int64; the column type bounds it further
_FLOAT_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_ISO_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"]


class MissingColumns(ValueError):
    """A mandatory source column is absent: the whole file is rejected, nothing is loaded from it."""


@dataclass(frozen=True)
class BatchInfo:
    batch_id: str
    load_date: date
    ingested_at: datetime


@dataclass
class Normalised:
    good: pa.Table
    quarantine: pa.Table
    records_in: int  # records after melt (the unit of rows written + quarantined)
    new_columns: list[str]


def _strings(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    trimmed = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _melt(spec: FeedSpec, table: pa.Table, rows: pa.Array) -> tuple[pa.Table, pa.Array]:
    """One row per filled melt column; a row with none of them stays once, with nothing in the value."""
    melt = spec.melt
    base = table.drop_columns([c for c in melt.columns if c in table.column_names])
    parts, part_rows = [], []
    any_filled = pa.array([False] * table.num_rows)
    for source_col, name in melt.columns.items():
        if source_col not in table.column_names:
            continue
        values = _strings(table[source_col])
        mask = pc.is_valid(values)
        any_filled = pc.or_(any_filled, mask)
        idx = pc.indices_nonzero(mask)
        part = base.take(idx).append_column(MELT_NAME, pa.array([name] * len(idx), pa.string()))
        parts.append(part.append_column(MELT_VALUE, values.take(idx)))
        part_rows.append(rows.take(idx))
    idx = pc.indices_nonzero(pc.invert(any_filled))
    empty = base.take(idx).append_column(MELT_NAME, pa.nulls(len(idx), pa.string()))
    parts.append(empty.append_column(MELT_VALUE, pa.nulls(len(idx), pa.string())))
    part_rows.append(rows.take(idx))
    return pa.concat_tables(parts), pa.concat_arrays(part_rows)


def _iso_fractions(values: pa.Array, parsed: pa.Array) -> pa.Array:
    """strptime has no %f: parse what it left (fractional seconds) with Arrow's ISO-8601 cast."""
    left = pc.indices_nonzero(pc.and_(pc.is_valid(values), pc.is_null(parsed)))
    if len(left) == 0:
        return parsed
    utc = pa.timestamp("us", tz="UTC")
    subset = values.take(left)
    try:
        fixed = pc.cast(subset, utc)
    except pa.ArrowInvalid:  # some are not timestamps at all: one at a time, failures stay null
        fixed = pa.array([_cast_or_none(v, utc) for v in subset], utc)
    out = parsed.to_pylist()
    for i, v in zip(left.to_pylist(), fixed.to_pylist(), strict=True):
        out[i] = v
    return pa.array(out, parsed.type)


def _cast_or_none(value: pa.Scalar, to: pa.DataType):
    try:
        return pc.cast(pa.array([value.as_py()]), to)[0].as_py()
    except pa.ArrowInvalid:
        return None


def _parse(col: Column, values: pa.Array, tz: str) -> pa.Array:
    """Typed values; null where the input is null or does not parse."""
    if col.type == "string":
        if col.values:
            keys = pa.array(list(col.values), pa.string())
            idx = pc.index_in(values, value_set=keys)
            return pa.array(list(col.values.values()), pa.string()).take(idx)
        return values
    if col.type in ("int", "float"):
        ok = pc.match_substring_regex(values, _INT_RE if col.type == "int" else _FLOAT_RE)
        cleaned = pc.if_else(ok, values, pa.scalar(None, pa.string()))
        if col.type == "int":
            wide = pc.cast(cleaned, pa.int64())
            # out of int32's range is unparseable, never wrapped around
            fits = pc.and_(pc.greater_equal(wide, -(2**31)), pc.less_equal(wide, 2**31 - 1))
            return pc.cast(pc.if_else(fits, wide, pa.scalar(None, pa.int64())), pa.int32())
        return pc.cast(cleaned, pa.float64())
    if col.type == "boolean":
        trues = pa.array([v.lower() for v in (col.true_values or DEFAULT_TRUE)])
        falses = pa.array([v.lower() for v in (col.false_values or DEFAULT_FALSE)])
        lowered = pc.utf8_lower(values)
        return pc.if_else(
            pc.is_in(lowered, trues),
            True,
            pc.if_else(pc.is_in(lowered, falses), pa.scalar(False), pa.scalar(None, pa.bool_())),
        )
    if col.type == "timestamp":
        if col.format == "iso8601":
            parsed = [pc.strptime(values, f, unit="us", error_is_null=True) for f in _ISO_FORMATS]
            return _iso_fractions(values, pc.coalesce(*parsed)).cast(TS)
        naive = pc.strptime(values, col.format or "%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
        return pc.assume_timezone(naive, col.timezone or tz).cast(TS)
    if col.type == "date":
        return pc.strptime(values, col.format or "%Y-%m-%d", unit="s", error_is_null=True).cast(pa.date32())
    raise ValueError(f"unknown column type {col.type!r}")


class FirstFailure:
    """Per row, the first check it failed: the rule, the column and the offending value. Checks run in spec
    order, so the first failing column decides the rule a quarantined row carries."""

    def __init__(self, n: int) -> None:
        self.rule = pa.nulls(n, pa.string())
        self.column = pa.nulls(n, pa.string())
        self.value = pa.nulls(n, pa.string())

    def flag(self, mask: pa.Array | None, rule: str, column: str, values: pa.Array) -> None:
        """Record `rule` for the rows in `mask` that have not failed yet."""
        if mask is None:
            return
        mask = pc.fill_null(mask, False)
        if not pc.any(mask).as_py():  # the usual case: nothing to record, skip three passes over the column
            return
        new = pc.and_(mask, pc.is_null(self.rule))
        self.rule = pc.if_else(new, rule, self.rule)
        self.column = pc.if_else(new, column, self.column)
        self.value = pc.if_else(new, values, self.value)

    @property
    def failed(self) -> pa.Array:
        return pc.is_valid(self.rule)


def normalise(chunk: SourceChunk, spec: FeedSpec, info: BatchInfo) -> Normalised:
    """One chunk of source text as canonical rows (good) and quarantine records (with the first rule failed)."""
    if not chunk.table.column_names:  # every row of the chunk was a reader reject
        return Normalised(
            entity_schema(spec.entity).empty_table(),
            _reject_quarantine(chunk, spec, info),
            len(chunk.rejects),
            [],
        )
    _check_required_columns(chunk, spec)
    new_columns = _new_columns(chunk.table, spec)
    table, rows, columns = _melted(chunk, spec)
    n = table.num_rows
    text = clean_identifiers({c: _strings(table[c]) for c in columns if c in table.column_names}, spec)
    failures = FirstFailure(n)
    oversized = _flag_broken_text(failures, table, text, spec)
    parsed = _parse_columns(failures, columns, text, spec, n)
    source_record_id = _source_record_id(text, spec)
    full = _canonical_table(
        spec, info, chunk.source_file, rows, parsed, source_record_id, _extra_columns(table, new_columns), n
    )
    good = full.filter(pc.invert(failures.failed))
    quarantine = _failed_quarantine(
        table, rows, source_record_id, failures, oversized, chunk.source_file, spec, info
    )
    if chunk.rejects:
        quarantine = pa.concat_tables([quarantine, _reject_quarantine(chunk, spec, info)])
    return Normalised(good, quarantine, n + len(chunk.rejects), new_columns)


def _check_required_columns(chunk: SourceChunk, spec: FeedSpec) -> None:
    missing = [c for c in spec.required_source_columns if c not in chunk.table.column_names]
    if missing:
        raise MissingColumns(
            f"{chunk.source_file}: mandatory column(s) {missing} missing (feed {spec.feed}, spec {spec.path}); "
            f"columns present: {chunk.table.column_names}"
        )


def _new_columns(table: pa.Table, spec: FeedSpec) -> list[str]:
    """Source columns the spec neither maps, ignores nor melts: kept as JSON in `extra_columns`."""
    known = set(spec.columns) | set(spec.ignore_columns) | set(spec.melt.columns if spec.melt else ())
    return [c for c in table.column_names if c not in known]


def _melted(chunk: SourceChunk, spec: FeedSpec) -> tuple[pa.Table, pa.Array, dict[str, Column]]:
    """The chunk's rows and the spec's columns, after the melt if the spec has one (adding its name and
    value columns)."""
    columns = dict(spec.columns)
    if not spec.melt:
        return chunk.table, chunk.rows, columns
    table, rows = _melt(spec, chunk.table, chunk.rows)
    columns[MELT_NAME] = Column(name=spec.melt.name_column, required=True)
    columns[MELT_VALUE] = Column(
        name=spec.melt.value_column, type=spec.melt.type, format=spec.melt.format, required=True
    )
    return table, rows, columns


def _flag_broken_text(
    failures: FirstFailure, table: pa.Table, text: dict[str, pa.Array], spec: FeedSpec
) -> bool:
    """Broken text first: it decides the rule whatever else the row holds. True if any field is oversized."""
    oversized = False
    identifiers = set(identifier_columns(spec)) | set(spec.primary_key)
    for name in table.column_names:
        values = text[name] if name in text else _strings(table[name])
        mask = control_character_mask(values, free_text=name not in identifiers)
        failures.flag(mask, CONTROL_CHARACTER, name, values)
        too_long = oversized_mask(values, spec.max_field_bytes)
        if too_long is not None:
            oversized = True
            failures.flag(too_long, OVERSIZED_FIELD, name, shortened(values))
    return oversized


def _parse_columns(
    failures: FirstFailure, columns: dict[str, Column], text: dict[str, pa.Array], spec: FeedSpec, n: int
) -> dict[str, pa.Array]:
    """Typed canonical columns; a missing mandatory value or one that does not parse flags its row."""
    out: dict[str, pa.Array] = {}
    for source_col, col in columns.items():
        values = text.get(source_col, pa.nulls(n, pa.string()))
        if col.required or source_col in spec.primary_key:
            failures.flag(pc.is_null(values), "missing_mandatory", source_col, values)
        if col.name is None:
            continue
        parsed = _parse(col, values, spec.timezone)
        bad = pc.and_(pc.is_valid(values), pc.is_null(parsed))
        failures.flag(bad, "unknown_value" if col.values else f"unparseable_{col.type}", source_col, values)
        if col.prefix_jurisdiction:
            parsed = pc.binary_join_element_wise(spec.jurisdiction_code, parsed, ":")
        out[col.name] = parsed
    return out


def _source_record_id(text: dict[str, pa.Array], spec: FeedSpec) -> pa.Array:
    """The primary key parts joined with ':' (a melted feed's name column stands for its melt part)."""
    key_cols = [
        text[MELT_NAME] if (spec.melt and k == spec.melt.name_column) else text.get(k)
        for k in spec.primary_key
    ]
    return pc.binary_join_element_wise(*key_cols, ":")


MASKED = "<masked: looks like personal data>"


def _extra_columns(table: pa.Table, new_columns: list[str]) -> pa.Array:
    """Unknown source columns as JSON; a column whose values look like personal data (a renamed phone or
    ID number column) keeps its name but never its values."""
    if not new_columns:
        return pa.nulls(table.num_rows, pa.string())
    extra = table.select(new_columns)
    for i, name in enumerate(new_columns):
        if looks_personal(extra[name]):
            masked = pc.if_else(pc.is_valid(extra[name]), MASKED, pa.scalar(None, pa.string()))
            extra = extra.set_column(i, name, masked)
    extra_rows = extra.to_pylist()
    return pa.array([json.dumps(r, ensure_ascii=False, sort_keys=True) for r in extra_rows], pa.string())


def _canonical_table(
    spec: FeedSpec,
    info: BatchInfo,
    source_file: str,
    rows: pa.Array,
    parsed: dict[str, pa.Array],
    source_record_id: pa.Array,
    extra: pa.Array,
    n: int,
) -> pa.Table:
    """Every row in the entity's schema: lineage columns, parsed columns, the spec's constants, nulls."""
    schema = entity_schema(spec.entity)
    lineage = {
        "record_id": pc.binary_join_element_wise(spec.jurisdiction_code, source_record_id, ":"),
        "source_record_id": source_record_id,
        "jurisdiction_code": pa.repeat(pa.scalar(spec.jurisdiction_code, pa.string()), n),
        "source_feed": pa.repeat(pa.scalar(spec.feed, pa.string()), n),
        "source_file": pa.repeat(pa.scalar(source_file, pa.string()), n),
        "source_row": rows,
        "batch_id": pa.repeat(pa.scalar(info.batch_id, pa.string()), n),
        "load_date": pa.repeat(pa.scalar(info.load_date, pa.date32()), n),
        "ingested_at": pa.repeat(pa.scalar(info.ingested_at, TS), n),
        "extra_columns": extra,
    }
    constants = {k: pa.repeat(pa.scalar(v, schema.field(k).type), n) for k, v in spec.constants.items()}
    arrays = [
        lineage.get(f.name)
        if f.name in lineage
        else parsed.get(f.name, constants.get(f.name, pa.nulls(n, f.type)))
        for f in schema
    ]
    return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema)


def _failed_quarantine(
    table: pa.Table,
    rows: pa.Array,
    source_record_id: pa.Array,
    failures: FirstFailure,
    oversized: bool,
    source_file: str,
    spec: FeedSpec,
    info: BatchInfo,
) -> pa.Table:
    """Quarantine records of the rows that failed a check, keeping each row as read (after melt)."""
    bad_idx = pc.indices_nonzero(failures.failed)
    records = table.take(bad_idx).to_pylist()
    if oversized:
        records = [shorten_record(r, spec.max_field_bytes) for r in records]
    return quarantine_rows(
        spec,
        info,
        source_file,
        source_record_id=source_record_id.take(bad_idx),
        rows=rows.take(bad_idx),
        rules=failures.rule.take(bad_idx),
        columns=failures.column.take(bad_idx),
        values=failures.value.take(bad_idx),
        records=records,
    )


def _reject_quarantine(chunk: SourceChunk, spec: FeedSpec, info: BatchInfo) -> pa.Table:
    """Quarantine records of the rows the reader could not read."""
    r = chunk.rejects
    return quarantine_rows(
        spec,
        info,
        pa.array([x.source_file for x in r], pa.string()),
        source_record_id=pa.array([reject_record_id(x, spec) for x in r], pa.string()),
        rows=pa.array([x.row for x in r], pa.int64()),
        rules=pa.array([x.rule for x in r], pa.string()),
        columns=pa.array([x.column for x in r], pa.string()),
        values=pa.array([x.text[:2000] for x in r], pa.string()),
        records=[x.text for x in r],
    )


def reject_record_id(reject: Reject, spec: FeedSpec) -> str | None:
    """The source record id of a row the reader could not read, from the fields it could split out.

    For a melted feed the melt's name column is not in the source row: the id is the other key parts.
    """
    fields = reject.fields or {}
    melt_name = spec.melt.name_column if spec.melt else None
    parts = [fields.get(k) for k in spec.primary_key if k != melt_name]
    if not parts or any(p is None or not str(p).strip() for p in parts):
        return None
    return ":".join(str(p).strip() for p in parts)


def quarantine_rows(
    spec: FeedSpec,
    info: BatchInfo,
    source_file: str | pa.Array,
    *,
    source_record_id,
    rows,
    rules,
    columns,
    values,
    records: list,
) -> pa.Table:
    """Quarantine records; `source_file` is one name for all rows, or one per row."""
    n = len(rules)
    files = pa.repeat(pa.scalar(source_file, pa.string()), n) if isinstance(source_file, str) else source_file
    as_text = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False, default=str) for r in records]
    return pa.Table.from_arrays(
        [
            source_record_id.cast(pa.string()),
            pa.array([spec.jurisdiction_code] * n, pa.string()),
            pa.array([spec.feed] * n, pa.string()),
            files.cast(pa.string()),
            rows.cast(pa.int64()),
            pa.array([info.batch_id] * n, pa.string()),
            pa.array([info.load_date] * n, pa.date32()),
            rules.cast(pa.string()),
            columns.cast(pa.string()),
            values.cast(pa.string()),
            pa.array(as_text, pa.string()),
        ],
        schema=quarantine_schema(),
    )


def quarantine_canonical(
    rows: pa.Table, spec: FeedSpec, info: BatchInfo, *, rules, columns, values
) -> pa.Table:
    """Canonical rows that must leave the batch, as quarantine records keeping their source file and row."""
    return quarantine_rows(
        spec,
        info,
        rows["source_file"].combine_chunks(),
        source_record_id=rows["source_record_id"].combine_chunks(),
        rows=rows["source_row"].combine_chunks(),
        rules=rules,
        columns=columns,
        values=values,
        records=rows.to_pylist(),
    )
