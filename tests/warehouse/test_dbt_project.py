"""The dbt project agrees with the feed specs and the canonical schemas (fast: no dbt run)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pingan.core.canonical import ENTITIES, HARMONISED, entity_schema
from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan.warehouse.build import create_raw_views
from pingan.warehouse.inputs import versions_table

DBT = PROJECT_ROOT / "dbt"


@pytest.fixture(scope="module")
def specs():
    return load_specs(PROJECT_ROOT / "connectors")


def test_harmonised_vocabularies_in_dbt_equal_the_canonical_ones():
    dbt_vars = yaml.safe_load((DBT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    assert dbt_vars["harmonised_values"] == {e: list(h.values) for e, h in HARMONISED.items()}


def test_one_exposure_per_agreement_naming_what_it_publishes():
    """dbt's lineage shows what leaves the hub: each agreement is an exposure on exactly its sources."""
    exposures = yaml.safe_load(
        (DBT / "models" / "marts" / "_partner_shares__exposures.yml").read_text("utf-8")
    )
    declared = {
        e["name"].removeprefix("share_"): {
            d.removeprefix("ref('").removesuffix("')") for d in e["depends_on"]
        }
        for e in exposures["exposures"]
    }
    granted = {}
    for path in (PROJECT_ROOT / "agreements").glob("*.yaml"):
        agreement = yaml.safe_load(path.read_text(encoding="utf-8"))
        granted[agreement["partner"]] = {d["source"] for d in agreement["datasets"].values()}
    assert declared == granted


def test_marts_live_in_domain_folders_each_with_one_yml():
    marts = DBT / "models" / "marts"
    assert not list(marts.glob("*.sql")), "a mart outside a domain folder"
    for folder in (p for p in marts.iterdir() if p.is_dir()):
        ymls = [p.name for p in folder.glob("*__models.yml")]
        assert ymls == [f"_{folder.name}__models.yml"], f"{folder.name}: {ymls}"
        documented = set()
        for block in yaml.safe_load((folder / ymls[0]).read_text("utf-8"))["models"]:
            documented.add(block["name"])
        assert documented == {p.stem for p in folder.glob("*.sql")}, folder.name


def test_no_model_names_a_feed(specs):
    """The dbt plumbing follows the feed specs: a new feed needs no model, var or seed edit."""
    texts = {
        p: p.read_text(encoding="utf-8")
        for p in DBT.rglob("*")
        if p.suffix in (".sql", ".yml", ".csv") and "target" not in p.parts
    }
    for feed in specs:
        naming = [str(p.relative_to(DBT)) for p, text in texts.items() if feed in text]
        assert naming == [], f"{feed} is named in {naming}"


def test_every_entity_has_one_staging_model_and_one_mirror():
    staging = {p.stem for p in (DBT / "models" / "staging").rglob("stg_*.sql")}
    mirrors = {p.stem for p in (DBT / "models" / "intermediate").rglob("int_*__versions.sql")}
    assert {f"stg_raw__{e}s" for e in ENTITIES} <= staging
    assert mirrors == {versions_table(e) for e in ENTITIES}


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
