"""Suite parameters from the code-mapping seed."""

from __future__ import annotations

import pytest

from pingan.quality.parameters import suite_parameters
from pingan.quality.suites import QualityConfigError, bind_parameters, load_suite


@pytest.fixture
def dbt_dir(tmp_path):
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "category_mappings.csv").write_text(
        "mapping_table,source_code,source_label,category\n"
        "qingpu_110,010100,盗窃,criminal\n"
        "qingpu_110,010200,诈骗,criminal\n"
        "joint_mechanism,联调,矛盾纠纷联合调处,joint_mediation\n",
        encoding="utf-8",
    )
    return tmp_path


def test_codes_of_one_mapping_table_keep_leading_zeros(dbt_dir):
    assert suite_parameters("qingpu_110", dbt_dir) == {"source_codes": ["010100", "010200"]}
    assert suite_parameters(None, dbt_dir) == {}


def test_unknown_mapping_table_is_an_error(dbt_dir):
    with pytest.raises(QualityConfigError, match="no rows for mapping_table 'wujiang'"):
        suite_parameters("wujiang", dbt_dir)


def test_rules_without_their_parameters_are_skipped(suites_dir):
    suite = load_suite("incident", suites_dir)
    bound, skipped = bind_parameters(suite, None)
    assert skipped == ["source_code_mapped"]
    assert len(bound["expectations"]) == len(suite["expectations"]) - 1
    bound, skipped = bind_parameters(suite, {"source_codes": ["x"]})
    assert skipped == [] and bound["expectations"] == suite["expectations"]
