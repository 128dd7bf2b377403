"""A custom Great Expectation for the national code standards (quality/standard_codes.py).

GX has no expectation for a check character or a code list it cannot hold. One column map
metric takes the standard by name and its Spark condition is that standard's predicate, so a
suite says `ExpectColumnValuesToMeetCodeStandard(column="uscc", standard="uscc")` and its
Data Docs show which standard. Importing this module registers both with GX; the contract
suites (quality/suites.py) add one to every DWD column kept in clear whose rule is a standard.
"""

from __future__ import annotations

from typing import ClassVar

from great_expectations.compatibility import pydantic
from great_expectations.execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from pyspark.sql import Column as SparkColumn

from quality.standard_codes import STANDARDS


class ColumnValuesMeetCodeStandard(ColumnMapMetricProvider):
    """True where the value satisfies the standard (GX leaves nulls out)."""

    condition_metric_name = "column_values.meet_code_standard"
    condition_value_keys = ("standard",)

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column: SparkColumn, standard: str, **kwargs: object) -> SparkColumn:
        return STANDARDS[standard].valid(column)


class ExpectColumnValuesToMeetCodeStandard(ColumnMapExpectation):
    """The column's values are codes of `standard`: uscc (GB 32100 统一社会信用代码),
    resident_id (GB 11643 公民身份号码), division (GB/T 2260 行政区划), mcc (ISO 18245)."""

    standard: str

    map_metric = "column_values.meet_code_standard"
    success_keys = ("standard", "mostly")
    args_keys = ("column", "standard")
    library_metadata: ClassVar[dict[str, str | list | bool]] = {
        "maturity": "production",
        "tags": ["citylake", "national standard", "column map expectation"],
        "contributors": ["@citylake"],
        "requirements": ["python-stdnum", "china_division", "iso18245"],
        "has_full_test_suite": True,
        "manually_reviewed_code": True,
    }

    @pydantic.validator("standard")
    def _known_standard(cls, standard: str) -> str:
        # Refused when the suite is written, not when GX first evaluates the metric.
        if standard not in STANDARDS:
            known = ", ".join(sorted(STANDARDS))
            raise ValueError(f"unknown code standard {standard!r}: known are {known}")
        return standard
