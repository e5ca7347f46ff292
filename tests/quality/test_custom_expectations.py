"""Each custom expectation, run by GX itself on a small DataFrame: valid values pass, invalid ones are
returned with their row index, missing values are left to the not-null rules."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from quality_factories import resident_id, uscc_code


def run_one(type_: str, df: pd.DataFrame, **kwargs) -> dict:
    from pingan.quality import gx_runtime

    suite = {"name": f"test_{type_}", "expectations": [{"type": type_, "kwargs": kwargs}]}
    (result,) = gx_runtime.run(suite, df).results
    assert not result.exception_info.get("raised_exception"), result.exception_info
    return result.result


def failing(type_: str, values: list, **kwargs) -> list[int]:
    return run_one(type_, pd.DataFrame({"v": values}), column="v", **kwargs)["unexpected_index_list"]


TYPES = {
    "expect_column_values_to_be_valid_resident_id",
    "expect_column_values_to_be_valid_uscc",
    "expect_column_values_to_be_valid_mobile_number",
    "expect_column_values_to_be_valid_division_code",
    "expect_multicolumn_values_to_be_in_order",
    "expect_event_stages_to_be_in_order",
    "expect_column_pair_values_to_be_coordinates_within_bounds",
}


def test_types_are_registered_under_snake_case_names():
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.registry import get_expectation_impl

    from pingan.quality.custom_expectations import CUSTOM_EXPECTATIONS

    assert {get_expectation_impl(t) for t in TYPES} == set(CUSTOM_EXPECTATIONS)
    assert sum(issubclass(c, ColumnMapExpectation) for c in CUSTOM_EXPECTATIONS) == 4


def test_resident_id():
    good, other = resident_id(), resident_id("330421", "19700101", "042")
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    values = [
        good,
        bad_check,
        None,
        f"{good};{other}",
        f"{good};{bad_check}",
        "not an id",
        good.replace("0612", "0631"),
    ]
    assert failing("expect_column_values_to_be_valid_resident_id", values, separator=";") == [1, 4, 5, 6]
    # without a separator a list is one (invalid) value
    assert failing("expect_column_values_to_be_valid_resident_id", [good, f"{good};{other}"]) == [1]


def test_uscc():
    values = [uscc_code(), uscc_code(org="MA1FL0002"), None, uscc_code()[:-1] + "I", "91310118"]
    assert failing("expect_column_values_to_be_valid_uscc", values) == [3, 4]


def test_mobile_number():
    values = ["13812345678", "12812345678", None, "1381234567", "+8613812345678", "19912345678"]
    assert failing("expect_column_values_to_be_valid_mobile_number", values) == [1, 3, 4]
    listed = ["13812345678;15912345678", "13812345678;110"]
    assert failing("expect_column_values_to_be_valid_mobile_number", listed, separator=";") == [1]


def test_division_code():
    values = ["310118", "320509", "999999", None, "320584", "310000"]
    assert failing("expect_column_values_to_be_valid_division_code", values, level="county") == [2, 4, 5]
    assert failing("expect_column_values_to_be_valid_division_code", values, latest_only=False) == [2]


def test_mostly_counts_only_present_values():
    # 2 bad of 4 present values (2 missing): 50% valid, below mostly=0.6 even though 4 of 6 rows "pass"
    values = ["13812345678", "13912345678", "1", "2", None, None]
    result = run_one(
        "expect_column_values_to_be_valid_mobile_number", pd.DataFrame({"v": values}), column="v", mostly=0.6
    )
    assert result["unexpected_count"] == 2
    assert result["unexpected_percent"] == pytest.approx(50.0)


def test_multicolumn_in_order_skips_gaps():
    t = pd.Timestamp("2025-03-01 08:00", tz="Asia/Shanghai")
    m = pd.Timedelta(minutes=1)
    df = pd.DataFrame(
        {
            "a": [t, t, t, None, t, t],
            "b": [t + m, t - m, None, t, t, None],
            "c": [t + 2 * m, t + 2 * m, t - m, t - m, t, None],
        }
    )
    result = run_one("expect_multicolumn_values_to_be_in_order", df, column_list=["a", "b", "c"])
    assert result["unexpected_index_list"] == [1, 2, 3]  # b < a; c < a across a gap in b; c < b
    strict = run_one(
        "expect_multicolumn_values_to_be_in_order", df, column_list=["a", "b", "c"], or_equal=False
    )
    assert 4 in strict["unexpected_index_list"]


def test_multicolumn_in_order_on_dates_with_missing_values():
    d = dt.date(2025, 3, 1)
    df = pd.DataFrame(
        {"a": [d, d, None], "b": [d + dt.timedelta(days=7), d - dt.timedelta(days=1), d]}, dtype=object
    )
    assert run_one("expect_multicolumn_values_to_be_in_order", df, column_list=["a", "b"])[
        "unexpected_index_list"
    ] == [1]


def test_event_stages_in_order_across_rows():
    t = pd.Timestamp("2025-03-01 08:00", tz="Asia/Shanghai")
    h = pd.Timedelta(hours=1)
    df = pd.DataFrame(
        {
            "event": ["E1", "E1", "E1", "E2", "E2", "E3", "E3"],
            "stage": ["closed", "discovered", "dispatched", "dispatched", "discovered", "handled", "bogus"],
            "at": [t + 3 * h, t, t - h, t + h, t, t, t - h],
        }
    )
    stages = ["discovered", "dispatched", "handled", "closed"]
    result = run_one(
        "expect_event_stages_to_be_in_order", df, column_list=["event", "stage", "at"], stages=stages
    )
    assert result["unexpected_index_list"] == [
        2
    ]  # E1 dispatched before discovered; rows out of order are fine


def test_coordinates_within_bounds():
    df = pd.DataFrame(
        {"lat": [31.1, 121.1, None, 31.1, 40.0, None], "lon": [121.1, 31.1, None, None, 116.4, 121.0]}
    )
    result = run_one(
        "expect_column_pair_values_to_be_coordinates_within_bounds", df, column_A="lat", column_B="lon"
    )
    assert result["unexpected_index_list"] == [1, 3, 4, 5]  # swapped, half a position, Beijing, half
