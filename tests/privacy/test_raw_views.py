"""The warehouse's raw views are where personal data becomes pseudonyms: nothing downstream sees a raw value."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pingan.core.canonical import entity_schema
from pingan.core.pseudonym import PREFIX, pseudonym, pseudonym_list, register_pseudonym_functions
from pingan.warehouse.build import create_raw_views

KEY = b"hub-key-for-tests-0123456789abcd"


def _incident_file(tmp_path: Path) -> str:
    row = {
        "record_id": "310118:1",
        "caller_phone": "139 1234 5678",
        "involved_id_numbers": "310118198506150019; 310118198506150027",
        "address": "青浦区金泽镇某路1号",
        "extra_columns": json.dumps({"备注": "联系人13812345678"}, ensure_ascii=False),
    }
    path = tmp_path / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=entity_schema("incident")), path)
    return str(path)


def test_raw_views_pseudonymise_personal_columns_and_keep_only_drift_column_names(tmp_path: Path):
    with duckdb.connect() as con:
        register_pseudonym_functions(con, KEY)
        create_raw_views(con, {"incident": [_incident_file(tmp_path)]})
        phone, ids, address, extra = con.execute(
            "select caller_phone, involved_id_numbers, address, extra_columns from raw.incident"
        ).fetchone()
    assert phone == pseudonym(KEY, "13912345678")  # spaces do not make another person
    assert ids == pseudonym_list(KEY, "310118198506150019;310118198506150027")
    assert address.startswith(PREFIX) and "金泽" not in address
    assert json.loads(extra) == ["备注"]


def test_raw_views_cannot_be_read_without_the_hub_key(tmp_path: Path):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        register_pseudonym_functions(con, KEY)
        create_raw_views(con, {"incident": [_incident_file(tmp_path)]})
    with (
        duckdb.connect(str(path), read_only=True) as con,
        pytest.raises(duckdb.Error, match="pingan_pseudonym"),
    ):
        con.execute("select caller_phone from raw.incident").fetchall()
