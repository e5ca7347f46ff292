"""The PII guard: every written form of a mobile or resident ID, numeric columns, and known names."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pingan.sharing.pii_guard import scan
from pingan.sharing.pseudonymise import keyed_id, pseudonym


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("报警人 13912345678 已联系", "mobile"),
        ("电话139-1234-5678", "mobile"),
        ("电话139 1234 5678", "mobile"),
        ("电话1391.234.5678", "mobile"),
        ("电话+8613912345678", "mobile"),
        ("电话 +86 139 1234 5678", "mobile"),
        ("电话008613912345678", "mobile"),
        ("电话86-13912345678", "mobile"),
        ("电话１３９１２３４５６７８", "mobile"),
        ("电话１３９－１２３４－５６７８", "mobile"),
        ("电话＋８６　１３９　１２３４　５６７８", "mobile"),
        ("当事人 11010519491231002X 到场", "resident_id"),
        ("当事人 110105 19491231 002X 到场", "resident_id"),
        ("当事人 110105-19491231-002x 到场", "resident_id"),
        ("当事人 １１０１０５１９４９１２３１００２Ｘ", "resident_id"),
    ],
)
def test_finds_pii_in_free_text(text, rule):
    table = pa.table({"disposition": [text, "已调解"], "record_id": ["310118:QP11020250301000001", None]})
    assert [(f.column, f.rule, f.rows) for f in scan(table)] == [("disposition", rule, 1)]


def test_scans_numeric_columns():
    table = pa.table(
        {
            "callback": pa.array([13912345678, 42], pa.int64()),
            "as_float": pa.array([13912345678.0, 1.5]),
            "seconds": pa.array([300, 12], pa.int64()),
        }
    )
    assert [(f.column, f.rule) for f in scan(table)] == [("callback", "mobile"), ("as_float", "mobile")]


def test_finds_names_of_the_source_batches():
    table = pa.table({"outcome": ["王秀英已到场调解", "双方和解"], "parties": ["p_abc", None]})
    findings = scan(table, person_names={"王秀英", "张伟"}, pseudonymised={"parties"})
    assert [(f.column, f.rule, f.rows) for f in findings] == [("outcome", "person_name", 1)]


def test_ignores_ids_that_are_not_personal():
    table = pa.table(
        {
            "record_id": ["310118:QP11020250301000001", keyed_id(b"k" * 32, "310118:QP11020250301000001")],
            "uscc": ["91310118MA1JL0RX4K", None],
            "grid_id": ["310118001-001", "310118001-002"],
            "phone": [pseudonym(b"k" * 32, "13912345678"), None],
            "reported": ["2025-03-01 13:12:34", "2025-03-01T13:12:34+08:00"],
        }
    )
    assert scan(table) == []


def test_keyed_ids_keep_the_jurisdiction_and_differ_per_key():
    a, b = keyed_id(b"a" * 32, "310118:QP1"), keyed_id(b"b" * 32, "310118:QP1")
    assert a.startswith("310118:k_") and b.startswith("310118:k_") and a != b
    assert keyed_id(b"a" * 32, "310118:QP1") == a
