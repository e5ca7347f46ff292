"""What every reader hands to the loader: a chunk of source rows as text, and the rows it could not read."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

# Reader-level rule names, the same for every format (one name per defect).
WRONG_ENCODING = "wrong_encoding"  # the row's bytes are not in the file's declared encoding
MALFORMED_ROW = "malformed_row"  # wrong number of fields, stray quote, not a JSON object, cut short


@dataclass(frozen=True)
class Reject:
    """A source row that never became a record (undecodable, wrong number of fields, not JSON...)."""

    source_file: str
    row: int | None
    rule: str
    text: str
    column: str | None = None
    fields: dict[str, str] | None = None  # what could be split out of the row (for its record id)


@dataclass
class SourceChunk:
    source_file: str
    table: pa.Table  # source column names, every value a string or null
    rows: pa.Array  # int64, 1-based row (line, sheet row, position in a response) of each table row
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.rejects)


def text_value(v) -> str | None:
    """Render a value parsed by a driver (JSON, XLSX, SQL) as the text the spec's formats expect."""
    import datetime as dt
    import json

    if v is None:
        return None
    if isinstance(v, str):
        return v if v != "" else None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ") if v.tzinfo else v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return repr(v)
    if isinstance(v, list):
        return ";".join(str(x) for x in v if x is not None) or None
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return str(v)


def records_to_chunk(
    source_file: str, records: list[dict], rows: list[int], rejects: list[Reject]
) -> SourceChunk:
    """Column-orient parsed records (JSON objects, XLSX rows, SQL rows), keeping first-seen column order."""
    columns: dict[str, list] = {}
    for rec in records:
        for k in rec:
            if k not in columns:
                columns[k] = []
    for name, values in columns.items():
        values.extend(text_value(rec.get(name)) for rec in records)
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    return SourceChunk(source_file, table, pa.array(rows, pa.int64()), rejects)
