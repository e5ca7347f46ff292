"""Suite parameters from the feed spec's code mapping."""

from __future__ import annotations

import pytest

from pingan.core.feed_spec import SpecError, load_spec, load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan.quality.parameters import suite_parameters
from pingan.quality.suites import bind_parameters, load_suite


def test_codes_come_from_the_feed_spec_and_keep_leading_zeros():
    specs = load_specs(PROJECT_ROOT / "connectors")
    codes = suite_parameters(specs["qingpu_110_incidents"])["source_codes"]
    assert "010100" in codes and codes == sorted(specs["qingpu_110_incidents"].code_mapping)
    assert suite_parameters(specs["qingpu_tax_registry"]) == {}


def test_a_mapping_outside_the_harmonised_values_names_the_file(tmp_path):
    spec = (PROJECT_ROOT / "connectors" / "incidents" / "wujiang.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "wujiang.yaml"
    bad.write_text(spec.replace("category: criminal", "category: crime", 1), encoding="utf-8")
    with pytest.raises(SpecError, match=r"wujiang.yaml: .*outside the harmonised values"):
        load_spec(bad)


def test_rules_without_their_parameters_are_skipped(suites_dir):
    suite = load_suite("incident", suites_dir)
    bound, skipped = bind_parameters(suite, None)
    assert skipped == ["source_code_mapped"]
    assert len(bound["expectations"]) == len(suite["expectations"]) - 1
    bound, skipped = bind_parameters(suite, {"source_codes": ["x"]})
    assert skipped == [] and bound["expectations"] == suite["expectations"]
