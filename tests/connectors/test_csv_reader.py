"""The block-wise CSV reader: encodings, line numbers across blocks, and rows it cannot read."""

from __future__ import annotations

import io

from pingan.ingest.formats.csv_reader import read_csv

HEADER = "接警编号,报警时间,所属镇街\n"


def _read(data: bytes, **kw):
    chunks = list(read_csv(io.BytesIO(data), "f.csv", **kw))
    rows = [r for c in chunks for r in c.table.to_pylist()]
    numbers = [n for c in chunks for n in c.rows.to_pylist()]
    rejects = [r for c in chunks for r in c.rejects]
    return rows, numbers, rejects


def test_gb18030_across_many_small_blocks_keeps_every_character():
    lines = [f"A{i},2025-01-01 00:00:{i % 60:02d},{'朱家角镇' if i % 2 else '金泽镇'}\n" for i in range(500)]
    data = (HEADER + "".join(lines)).encode("gb18030")
    rows, numbers, rejects = _read(data, encoding="gb18030", block_bytes=37)  # splits characters mid-block
    assert not rejects
    assert [r["所属镇街"] for r in rows] == [("朱家角镇" if i % 2 else "金泽镇") for i in range(500)]
    assert numbers == list(range(2, 502))


def test_bom_is_stripped_from_the_header():
    rows, _, _ = _read(
        ("\ufeff" + HEADER + "J1,2025/01/01 08:00,西塘镇\n").encode("utf-8"), encoding="utf-8-sig"
    )
    assert list(rows[0]) == ["接警编号", "报警时间", "所属镇街"]


def test_utf8_line_in_gb18030_file_is_rejected_with_its_line_number():
    data = (
        HEADER.encode("gb18030")
        + "A1,t,金泽镇\n".encode("gb18030")
        + "A2,t,练塘镇镇\n".encode()
        + "A3,t,赵巷镇\n".encode("gb18030")
    )
    rows, numbers, rejects = _read(data, encoding="gb18030")
    assert [r["接警编号"] for r in rows] == ["A1", "A3"]
    assert numbers == [2, 4]
    assert [(r.row, r.rule) for r in rejects] == [(3, "wrong_encoding")]
    assert "A2" in rejects[0].text


def test_truncated_last_row_and_wrong_field_count_are_rejects():
    data = (HEADER + "A1,t,金泽镇\nA2,t\nA3,t,x,extra\nA4,2025-01").encode("utf-8")
    rows, numbers, rejects = _read(data)
    assert [r["接警编号"] for r in rows] == ["A1"]
    assert sorted((r.row, r.rule) for r in rejects) == [
        (3, "malformed_row"),
        (4, "malformed_row"),
        (5, "malformed_row"),
    ]


def test_empty_values_are_null():
    rows, _, _ = _read((HEADER + "A1,,金泽镇\n").encode())
    assert rows[0]["报警时间"] is None


def test_stray_quote_and_bare_carriage_return_reject_their_lines_only():
    data = (HEADER + 'A1,"t,金泽镇\nA2,t,练塘镇\nA3,x\ry,赵巷镇\nA4,t,朱家角镇\n').encode("gb18030")
    rows, numbers, rejects = _read(data, encoding="gb18030")
    assert [r["接警编号"] for r in rows] == ["A2", "A4"]
    assert numbers == [3, 5]
    assert [(r.row, r.rule) for r in rejects] == [(2, "malformed_row"), (4, "malformed_row")]


def test_two_character_utf8_name_in_gb18030_file_is_caught():
    data = HEADER.encode("gb18030") + "A1,t,金泽镇\n".encode("gb18030") + "A2,张三,q\n".encode()
    rows, _, rejects = _read(data, encoding="gb18030")
    assert [r["接警编号"] for r in rows] == ["A1"]
    assert [(r.row, r.rule) for r in rejects] == [(3, "wrong_encoding")]


def test_quoted_line_break_is_one_record_numbered_by_its_first_line():
    body = 'J1,2025-01-01 08:00:00,金泽镇\nJ2,"2025-01-01\n09:00:00",朱家角\r\n镇\nJ3,2025-01-01 10:00:00,金泽镇\n'
    body = body.replace('"2025-01-01\n09:00:00"', "2025-01-01 09:00:00").replace(
        "朱家角\r\n镇", '"朱家角\r\n镇"'
    )
    for encoding in ("utf-8", "gb18030"):
        rows, numbers, rejects = _read((HEADER + body).encode(encoding), encoding=encoding)
        assert not rejects, rejects
        assert [r["接警编号"] for r in rows] == ["J1", "J2", "J3"]
        assert rows[1]["所属镇街"] == "朱家角\r\n镇"
        assert numbers == [2, 3, 5]


def test_quoted_line_break_at_a_block_boundary_stays_one_record():
    lines = [f'A{i},2025-01-01 00:00:00,"金泽\n镇{i}"\n' for i in range(200)]
    rows, numbers, rejects = _read(
        (HEADER + "".join(lines)).encode("gb18030"), encoding="gb18030", block_bytes=50
    )
    assert not rejects, rejects[:3]
    assert [r["所属镇街"] for r in rows] == [f"金泽\n镇{i}" for i in range(200)]
    assert numbers == list(range(2, 402, 2))
