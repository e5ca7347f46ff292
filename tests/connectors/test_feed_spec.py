"""Feed specs: every shipped spec validates; mistakes fail with the file, the key and the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pingan.core.canonical import ENTITY_FIELDS
from pingan.core.feed_spec import SpecError, load_spec, load_specs
from pingan.core.settings import PROJECT_ROOT

CONNECTORS = PROJECT_ROOT / "connectors"
DOMAIN_FEEDS = {
    "qingpu_110_incidents",
    "qingpu_tax_registry",
    "qingpu_fire_inspections",
    "qingpu_fire_alarms",
    "qingpu_grid_events",
    "wujiang_incidents",
    "jiashan_incidents",
    "jiashan_grid_events",
    "pinghu_jinshan_joint_operations",
}


def test_every_domain_feed_has_a_valid_spec():
    specs = load_specs(CONNECTORS)
    assert set(specs) == DOMAIN_FEEDS
    for spec in specs.values():
        assert spec.entity in ENTITY_FIELDS
        assert spec.schedule == "0 2 * * *"  # from _defaults.yaml
        assert spec.fingerprint


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "feed.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def _base_spec() -> str:
    return (CONNECTORS / "incidents" / "jiashan.yaml").read_text(encoding="utf-8")


def test_unknown_key_names_file_and_key(tmp_path):
    path = _write(tmp_path, _base_spec().replace("primary_key:", "primery_key: [x]\nprimary_key:"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert "primery_key" in str(err.value) and "unknown key" in str(err.value)


def test_wrong_type_names_the_nested_key(tmp_path):
    path = _write(
        tmp_path, _base_spec().replace("{name: longitude, type: float}", "{name: longitude, type: decimal}")
    )
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "columns.经度.type" in str(err.value)


def test_column_mapped_to_a_field_the_entity_lacks(tmp_path):
    path = _write(tmp_path, _base_spec().replace("{name: address}", "{name: street}"))
    with pytest.raises(SpecError, match="street"):
        load_spec(path)


def test_quality_override_needs_a_reason(tmp_path):
    path = _write(tmp_path, _base_spec() + "quality_overrides:\n  valid_resident_id: {mostly: 0.9}\n")
    with pytest.raises(SpecError, match="reason"):
        load_spec(path)
    ok = _write(
        tmp_path,
        _base_spec() + "quality_overrides:\n  valid_resident_id: "
        "{mostly: 0.9, reason: 'Jiashan backfills IDs of foreign nationals with passport numbers'}\n",
    )
    assert load_spec(ok).quality_overrides["valid_resident_id"].mostly == 0.9


def test_duplicate_feed_ids_are_refused(tmp_path):
    d = tmp_path / "connectors"
    shutil.copytree(CONNECTORS, d)
    shutil.copy(d / "incidents" / "jiashan.yaml", d / "incidents" / "jiashan_copy.yaml")
    with pytest.raises(SpecError, match="already defined"):
        load_specs(d)
