"""Turning frames into the bytes each source system writes, fast and byte-for-byte reproducible.

Text is built in bulk (one join and one encode per file), because a day of Qingpu 110 calls is thousands
of lines and csv.writer with per-row encoding is several times slower. Byte-level defects are made here:
a duplicated line, a line in the wrong encoding, a file cut off in the middle of its last line.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# --- values as text ----------------------------------------------------------------------------------


def _arrow(values: np.ndarray, dtype: pa.DataType, missing: np.ndarray) -> pa.Array:
    """Wrap a numpy buffer as an Arrow array; pa.array() would import pandas (seconds at start-up)."""
    values = np.ascontiguousarray(values)
    valid = pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None
    return pa.Array.from_buffers(dtype, len(values), [valid, pa.py_buffer(values)])


def _with_missing(text: pa.Array, missing: str | None, suffix: str = "") -> list:
    values = text.to_pylist()
    if suffix:
        values = [None if v is None else v + suffix for v in values]
    if missing is not None and text.null_count:
        values = [missing if v is None else v for v in values]
    return values


def fmt_times(ts: np.ndarray, style: str = "seconds", missing: str | None = "") -> list:
    """datetime64 (local) -> text in one of the sources' styles; NaT -> `missing`.

    seconds     2024-05-01 08:30:00          (Qingpu 110, grid events, SQLite)
    minutes     2024/05/01 08:30             (Jiashan)
    utc         2024-05-01T00:30:00Z         (Wujiang: the same instant in UTC)
    offset      2024-05-01T08:30:00+08:00    (the fire API)
    date        2024-05-01
    Arrow's cast formats in C++: per-value strftime would dominate a million-row run.
    """
    ts = ts.astype("datetime64[s]")
    if style == "utc":
        ts = ts - np.timedelta64(8, "h")
    text = _arrow(ts.view(np.int64), pa.timestamp("s"), np.isnat(ts)).cast(pa.string())
    suffix = ""
    if style == "minutes":
        text = pc.replace_substring(pc.utf8_slice_codeunits(text, 0, 16), "-", "/")
    elif style in ("utc", "offset"):
        text = pc.replace_substring(text, " ", "T")
        suffix = "Z" if style == "utc" else "+08:00"
    elif style == "date":
        text = pc.utf8_slice_codeunits(text, 0, 10)
    elif style != "seconds":
        raise ValueError(style)
    return _with_missing(text, missing, suffix)


def fmt_floats(values: np.ndarray, missing: str | None = "") -> list:
    """Shortest round-trip text of each float (NaN -> `missing`)."""
    values = np.asarray(values, dtype=np.float64)
    return _with_missing(_arrow(values, pa.float64(), np.isnan(values)).cast(pa.string()), missing)


def objects(values) -> np.ndarray:
    """A 1-d object array, even of tuples (which np.array would turn into a 2-d array)."""
    values = list(values)
    return np.fromiter(values, dtype=object, count=len(values))


def text_or_empty(values) -> list[str]:
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if None in values:
        return ["" if v is None else v for v in values]
    return values


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def json_strings(values, safe: bool = False) -> list[str]:
    """JSON literals for a column of str/None; `safe` when the text cannot need escaping (timestamps)."""
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if not safe and _NEEDS_ESCAPE.search(
        "".join(v for v in values if v is not None) if None in values else "".join(values)
    ):
        return ["null" if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    return ["null" if v is None else f'"{v}"' for v in values]


def json_lines(fields: list[str], columns: list[list[str]]) -> list[str]:
    """One JSON object per row from columns of ready-made JSON literals, keys in `fields` order."""
    template = "{" + ",".join(f'"{f}":%s' for f in fields) + "}"
    return [template % row for row in zip(*columns, strict=True)]


# --- text files with byte-level defects --------------------------------------------------------------


@dataclass(frozen=True)
class TextFormat:
    encoding: str
    newline: str = "\n"
    bom: bool = False
    wrong_encoding: str | None = None  # what a misencoded line is written in


def encode_text(
    lines: list[str],
    fmt: TextFormat,
    *,
    header: str | None = None,
    duplicates=frozenset(),
    misencoded=frozenset(),
    truncate: bool = False,
) -> bytes:
    """Join, encode and (optionally) damage the lines of one file.

    Duplicated lines follow their original; a truncated file ends in the middle of its last line,
    with no line break, as an interrupted upload leaves it.
    """
    nl = fmt.newline
    out = io.BytesIO()
    if fmt.bom:
        out.write("\ufeff".encode(fmt.encoding))
    if header is not None:
        out.write((header + nl).encode(fmt.encoding))
    body = lines[:-1] if truncate and lines else lines
    if not duplicates and not misencoded:
        if body:
            out.write((nl.join(body) + nl).encode(fmt.encoding))
    else:
        good: list[str] = []
        for i, line in enumerate(body):
            if i in misencoded:
                if good:
                    out.write((nl.join(good) + nl).encode(fmt.encoding))
                    good = []
                out.write((line + nl).encode(fmt.wrong_encoding))
            else:
                good.append(line)
            if i in duplicates:
                good.append(line)
        if good:
            out.write((nl.join(good) + nl).encode(fmt.encoding))
    if truncate and lines:
        last = lines[-1]
        out.write(last[: max(len(last) // 2, 1)].encode(fmt.encoding))
    return out.getvalue()


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --- XLSX ----------------------------------------------------------------------------------------------
# Written as plain OOXML parts rather than through openpyxl, whose per-cell objects cost ~0.7 s a day
# at scale 1, and whose files carry the wall clock. Shared strings and a date style, like Excel's own.

FIXED_TIME = datetime(2020, 1, 1)  # zip entry times and document properties: reruns must not differ
_EXCEL_EPOCH = datetime(1899, 12, 30)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CONTENT_TYPES = _HEAD + (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    "</Types>"
)
_ROOT_RELS = _HEAD + (
    f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    f'<Relationship Id="rId2" Type="{_PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = _HEAD + (
    f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
_STYLES = _HEAD + (
    f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="宋体"/><family val="3"/><charset val="134"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    "</fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="常规" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_APP = _HEAD + (
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>Microsoft Excel</Application></Properties>"
)


def _column_letters(n: int) -> list[str]:
    out = []
    for i in range(n):
        name, i = "", i + 1
        while i:
            i, r = divmod(i - 1, 26)
            name = chr(65 + r) + name
        out.append(name)
    return out


def _merge_cells(merged: list[str] | None) -> str:
    if not merged:
        return ""
    refs = "".join(f'<mergeCell ref="{ref}"/>' for ref in merged)
    return f'<mergeCells count="{len(merged)}">{refs}</mergeCells>'


def xlsx_bytes(sheet: str, header: list[str], rows: list[list], merged: list[str] | None = None) -> bytes:
    """A one-sheet workbook; str cells become shared strings, datetimes Excel dates, None empty cells;
    `merged`: cell ranges to merge (e.g. `B1:C1`, as a careless export does to header cells)."""
    letters = _column_letters(len(header))
    strings: dict[str, int] = {}
    out = []
    for r, row in enumerate([header, *rows], start=1):
        cells = []
        for letter, value in zip(letters, row, strict=True):
            if value is None or value == "":
                continue
            ref = f"{letter}{r}"
            if isinstance(value, datetime):
                serial = (value - _EXCEL_EPOCH).total_seconds() / 86400
                cells.append(f'<c r="{ref}" s="1"><v>{serial!r}</v></c>')
            elif isinstance(value, str):
                index = strings.setdefault(value, len(strings))
                cells.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
            else:
                cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
        out.append(f'<row r="{r}">{"".join(cells)}</row>')
    last = f"{letters[-1]}{len(rows) + 1}"
    sheet_xml = (
        f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><dimension ref="A1:{last}"/>'
        f"<sheetData>{''.join(out)}</sheetData>{_merge_cells(merged)}</worksheet>"
    )
    shared = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    shared_xml = f'{_HEAD}<sst xmlns="{_MAIN}" uniqueCount="{len(strings)}">{shared}</sst>'
    workbook_xml = (
        f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        f'<sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    core_xml = (
        f'{_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>网格化管理平台</dc:creator>'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'
    )
    parts = [
        ("[Content_Types].xml", _CONTENT_TYPES),
        ("_rels/.rels", _ROOT_RELS),
        ("docProps/app.xml", _APP),
        ("docProps/core.xml", core_xml),
        ("xl/workbook.xml", workbook_xml),
        ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
        ("xl/styles.xml", _STYLES),
        ("xl/sharedStrings.xml", shared_xml),
        ("xl/worksheets/sheet1.xml", sheet_xml),
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zf.writestr(info, text.encode("utf-8"))
    return buf.getvalue()
