"""The domain's custom Great Expectations expectations (pandas engine).

Identifiers: resident ID numbers (GB 11643), USCC (GB 32100), mobile numbers, GB/T 2260 division codes
(column-map expectations). Relations: timestamps in order within a row and lifecycle stages in order
across an event's rows (multicolumn), coordinates inside the Yangtze River Delta (column pair).
Importing this module imports GX (seconds) and registers these types, so suites naming them can be
loaded: only the gate imports it, lazily.

USCC and division-code checks run once per distinct value (pandas factorize): the same unit or code
repeats across a batch and stdnum works value by value. Resident IDs and phones, nearly all distinct,
are checked vectorised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
    multicolumn_condition_partial,
)

from pingan.quality import identifiers as ids

_METADATA: dict = {"maturity": "experimental", "tags": ["pingan", "identifiers"], "contributors": ["pingan"]}


def _each_distinct(column: pd.Series, check: Callable[[str], bool]) -> pd.Series:
    codes, uniques = pd.factorize(column)
    ok = np.fromiter((check(str(v)) for v in uniques), dtype=bool, count=len(uniques))
    return pd.Series(ok[codes], index=column.index)


def _all_items(check: Callable[[str], bool], separator: str | None) -> Callable[[str], bool]:
    return lambda value: all(check(item) for item in ids.split_list(value, separator))


def _nulls_pass(column: pd.Series, check: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`check` on the present values; missing ones pass (not-null is a rule of its own)."""
    present = column.notna()
    if present.all():
        return check(column)
    ok = pd.Series(True, index=column.index)
    ok[present] = check(column[present])
    return ok


def _compare(later: pd.Series, earlier: pd.Series, or_equal: bool) -> pd.Series:
    """later >= earlier (or >) where both are present, True elsewhere; safe for object dtypes (dates)."""
    both = later.notna() & earlier.notna()
    ok = pd.Series(True, index=later.index)
    ok[both] = (later[both] >= earlier[both]) if or_equal else (later[both] > earlier[both])
    return ok


# --- metrics ------------------------------------------------------------------------------------------
# Our metrics handle missing values themselves (filter_column_isnull = False, ignore_row_if "never"):
# GX would otherwise copy the whole batch frame minus the null rows for every expectation, the largest
# cost of validating a 1M-row batch. Column-map rules still compute `mostly` over the non-null values;
# the pair and multicolumn ones over all rows.
class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_resident_id"
    condition_value_keys = ("separator",)
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, separator=None, **kwargs):
        # resident IDs are nearly all distinct; the numpy version does 1M rows in a fraction of a second
        return _nulls_pass(
            column, lambda c: pd.Series(ids.resident_id_mask(c.astype("str"), separator), index=c.index)
        )


class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_uscc"
    condition_value_keys = ("separator",)
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, separator=None, **kwargs):
        return _nulls_pass(column, lambda c: _each_distinct(c, _all_items(ids.is_uscc, separator)))


class ColumnValuesValidMobileNumber(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_mobile_number"
    condition_value_keys = ("separator",)
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, separator=None, **kwargs):
        if separator is None:  # phones are nearly all distinct: one vectorised regex beats a loop
            return _nulls_pass(column, lambda c: c.astype("str").str.fullmatch(ids.MOBILE_PATTERN))
        return _nulls_pass(column, lambda c: _each_distinct(c, _all_items(ids.is_mobile, separator)))


class ColumnValuesValidDivisionCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_division_code"
    condition_value_keys = ("level", "latest_only")
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, level="any", latest_only=True, **kwargs):
        return _nulls_pass(
            column, lambda c: _each_distinct(c, lambda v: ids.is_division_code(v, level, latest_only))
        )


class MulticolumnValuesInOrder(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.in_order"
    condition_value_keys = ("or_equal",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, or_equal=True, **kwargs):
        columns = [column_list[c] for c in column_list.columns]
        ok = pd.Series(True, index=column_list.index)
        latest = columns[0]  # the latest value seen so far in the row; a gap compares with the one before
        for column in columns[1:]:
            ok &= _compare(column, latest, or_equal)
            latest = column.where(column.notna(), latest)
        return ok


class MulticolumnEventStagesInOrder(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.event_stages_in_order"
    condition_value_keys = ("stages",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, stages, **kwargs):
        event, stage, at = (column_list[c] for c in column_list.columns)
        rank = stage.map({name: i for i, name in enumerate(stages)})
        # unknown stages and missing times are other rules' failures, not this one's
        rows = pd.DataFrame({"event": event, "rank": rank, "at": at}).dropna()
        rows = rows.sort_values(["event", "rank"], kind="stable")
        earlier = rows.groupby("event")["at"].cummax().groupby(rows["event"]).shift()
        ok = pd.Series(True, index=column_list.index)
        ok[rows.index] = earlier.isna() | (rows["at"] >= earlier)  # only the stage that came too early fails
        return ok


class ColumnPairValuesCoordinatesWithinBounds(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.coordinates_within_bounds"
    condition_value_keys = ("min_latitude", "max_latitude", "min_longitude", "max_longitude")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, min_latitude, max_latitude, min_longitude, max_longitude, **kwargs):
        lat, lon = column_A, column_B
        inside = lat.between(min_latitude, max_latitude) & lon.between(min_longitude, max_longitude)
        return inside | (lat.isna() & lon.isna())  # no position at all is fine; half a position is not


# --- expectations (type names derive from the class names, e.g. expect_column_values_to_be_valid_uscc) -
class ExpectColumnValuesToBeValidResidentId(ColumnMapExpectation):
    """Every value (or every `separator`-joined item) is a GB 11643 resident ID number."""

    separator: str | None = None

    map_metric = "column_values.valid_resident_id"
    success_keys = ("mostly", "separator")
    args_keys = ("column",)
    library_metadata: ClassVar[dict] = _METADATA


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """Every value (or every `separator`-joined item) is a GB 32100 unified social credit code."""

    separator: str | None = None

    map_metric = "column_values.valid_uscc"
    success_keys = ("mostly", "separator")
    args_keys = ("column",)
    library_metadata: ClassVar[dict] = _METADATA


class ExpectColumnValuesToBeValidMobileNumber(ColumnMapExpectation):
    """Every value (or every `separator`-joined item) is an 11-digit mainland mobile number, 1[3-9]x."""

    separator: str | None = None

    map_metric = "column_values.valid_mobile_number"
    success_keys = ("mostly", "separator")
    args_keys = ("column",)
    library_metadata: ClassVar[dict] = _METADATA


class ExpectColumnValuesToBeValidDivisionCode(ColumnMapExpectation):
    """Every value is a GB/T 2260 division code of the given level, per the gb2260 package."""

    level: Literal["any", "province", "prefecture", "county"] = "any"
    latest_only: bool = True

    map_metric = "column_values.valid_division_code"
    success_keys = ("mostly", "level", "latest_only")
    args_keys = ("column",)
    library_metadata: ClassVar[dict] = _METADATA


class ExpectMulticolumnValuesToBeInOrder(MulticolumnMapExpectation):
    """Within each row the listed columns never go back in time: reported <= dispatched <= arrived <= ...

    Missing values are skipped (a case never dispatched may still close), and each present value is
    compared with the latest present one before it.
    """

    or_equal: bool = True
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "never"

    map_metric = "multicolumn_values.in_order"
    success_keys = ("mostly", "or_equal")
    args_keys = ("column_list",)
    library_metadata: ClassVar[dict] = _METADATA


class ExpectEventStagesToBeInOrder(MulticolumnMapExpectation):
    """Across rows: column_list = [event id, stage, stage time]; no stage of an event is timed before a
    stage listed earlier in `stages`. Only the early row fails; the check sees one batch, so a stage
    whose predecessor arrived in an earlier batch is not compared.
    """

    stages: list[str]
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "never"

    map_metric = "multicolumn_values.event_stages_in_order"
    success_keys = ("mostly", "stages")
    args_keys = ("column_list",)
    library_metadata: ClassVar[dict] = _METADATA


class ExpectColumnPairValuesToBeCoordinatesWithinBounds(ColumnPairMapExpectation):
    """(column_A, column_B) = (latitude, longitude) lies in the box; both missing passes, one missing fails.

    The default box is the Yangtze River Delta (Shanghai, Jiangsu, Zhejiang, Anhui), which also catches
    swapped latitude and longitude.
    """

    min_latitude: float = 27.0
    max_latitude: float = 35.5
    min_longitude: float = 114.5
    max_longitude: float = 123.0
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "neither"

    map_metric = "column_pair_values.coordinates_within_bounds"
    success_keys = (
        "mostly",
        "ignore_row_if",
        "min_latitude",
        "max_latitude",
        "min_longitude",
        "max_longitude",
    )
    args_keys = ("column_A", "column_B")
    library_metadata: ClassVar[dict] = _METADATA


CUSTOM_EXPECTATIONS = (
    ExpectColumnValuesToBeValidResidentId,
    ExpectColumnValuesToBeValidUscc,
    ExpectColumnValuesToBeValidMobileNumber,
    ExpectColumnValuesToBeValidDivisionCode,
    ExpectMulticolumnValuesToBeInOrder,
    ExpectEventStagesToBeInOrder,
    ExpectColumnPairValuesToBeCoordinatesWithinBounds,
)
