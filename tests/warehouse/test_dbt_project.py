"""The dbt project agrees with the feed specs and the canonical schemas (fast: no dbt run)."""

from __future__ import annotations

import csv
import re

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pingan.canonical import ENTITIES, entity_schema
from pingan.feed_spec import load_specs
from pingan.settings import PROJECT_ROOT
from pingan.warehouse import create_raw_views

DBT = PROJECT_ROOT / "dbt"


@pytest.fixture(scope="module")
def specs():
    return load_specs(PROJECT_ROOT / "connectors")


def test_category_mapping_vars_mirror_the_feed_specs(specs):
    dbt_vars = yaml.safe_load((DBT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    incidents = {s.feed: s.code_mapping for s in specs.values() if s.entity == "incident"}
    joint = {s.feed: s.code_mapping for s in specs.values() if s.entity == "joint_operation"}
    assert dbt_vars["incident_category_mappings"] == incidents
    assert dbt_vars["joint_mechanism_mappings"] == joint


def test_every_feed_has_one_staging_model(specs):
    models = {p: p.read_text(encoding="utf-8") for p in (DBT / "models" / "staging").rglob("stg_*.sql")}
    for feed in specs:
        # a model filters on its feed inline, or through a staging macro given the feed id
        owners = [p.name for p, sql in models.items()
                  if f"where source_feed = '{feed}'" in sql or re.search(rf"{{{{ staged_\w+\('{feed}'\) }}}}", sql)]
        assert len(owners) == 1, f"{feed}: staging models filtering on it: {owners}"


def test_incident_mappings_use_only_harmonised_categories():
    seed = DBT / "seeds" / "category_mappings.csv"
    if not seed.exists():
        pytest.skip("dbt/seeds/category_mappings.csv not generated yet")
    allowed = set(
        yaml.safe_load((DBT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]["incident_categories"]
    )
    with open(seed, encoding="utf-8") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["mapping_table"] in ("qingpu_110", "wujiang_incident", "jiashan_incident")
        ]
    assert rows and {r["category"] for r in rows} <= allowed


def test_raw_views_have_the_canonical_shape_with_or_without_files(tmp_path):
    schema = entity_schema("incident")
    # an older file without the last canonical columns: they read as typed nulls
    old = schema.remove(schema.get_field_index("involved_id_numbers"))
    path = tmp_path / "raw" / "incident" / "feed=x" / "part-00000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"record_id": "310118:1", "load_date": None}], schema=old), path)

    with duckdb.connect() as con:
        create_raw_views(con, {"incident": [str(path)]})
        for entity in ENTITIES:
            cols = [r[0] for r in con.execute(f"DESCRIBE raw.{entity}").fetchall()]
            assert cols == entity_schema(entity).names, entity
        assert con.execute("select record_id, involved_id_numbers from raw.incident").fetchall() == [
            ("310118:1", None)
        ]
        assert con.execute("select count(*) from raw.fire_alarm").fetchone() == (0,)
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = 'incident'"
            ).fetchall()
        )
        assert types["ingested_at"] == "TIMESTAMP WITH TIME ZONE" and types["source_row"] == "BIGINT"
