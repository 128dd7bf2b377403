"""Expectation suites generated from a table contract: say each rule once, check it everywhere.

nullable: false -> not null; primary_key -> unique; values -> in set; min/max -> between;
pattern -> regex; a column kept in clear whose rule is a national code standard (USCC, 身份证,
GB/T 2260, MCC) -> the custom expectation of that standard (quality/expectations.py). Every check
blocks promotion unless the contract's `gate_policy` makes it a warning or, for a row-level
check, a quarantine (`TableContract.policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import great_expectations as gx
from great_expectations.expectations import Expectation
from pyspark.sql import Column as SparkColumn

from quality.expectations import ExpectColumnValuesToMeetCodeStandard
from quality.standard_codes import STANDARDS
from warehouse_layers.contract import GatePolicy, TableContract

Severity = GatePolicy

# The dwd_quarantine reason code of a row a gate moved out, by the kind of check it failed.
GATE_REASONS = {
    "not_null": "gate_not_null",
    "values": "gate_values",
    "range": "gate_range",
    "pattern": "gate_pattern",
    "code": "gate_code",
}


@dataclass(frozen=True)
class RowCheck:
    """How one row fails a row-level check: the same test as the expectation's, as a Spark
    predicate (GX skips nulls in every check but not-null, so does this)."""

    column: str
    reason: str  # a GATE_REASONS code
    failing: Callable[[], SparkColumn]  # made when used: a Spark column needs a session


@dataclass(frozen=True)
class Check:
    name: str  # stable, human-readable: what is checked, on which column
    expectation: Expectation
    severity: Severity = "block"
    row: RowCheck | None = None  # set for row-level checks: what `quarantine` moves out


def contract_checks(table: TableContract) -> list[Check]:
    E = gx.expectations
    checks: list[Check] = []

    def add(
        key: str,
        name: str,
        expectation: Expectation,
        failing: Callable[[], SparkColumn] | None = None,
    ) -> None:
        column, kind = key.rsplit(".", 1)
        row = RowCheck(column, GATE_REASONS[kind], failing) if failing else None
        checks.append(Check(name, expectation, table.policy(key), row))

    for col in table.columns:
        value = _column(col.name)
        if not col.nullable:
            add(
                f"{col.name}.not_null",
                f"{col.name} not null",
                E.ExpectColumnValuesToNotBeNull(column=col.name),
                lambda value=value: value().isNull(),
            )
        if col.values:
            add(
                f"{col.name}.values",
                f"{col.name} in {list(col.values)}",
                E.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.values)),
                lambda value=value, values=list(col.values): ~value().isin(values),
            )
        if col.min is not None or col.max is not None:
            add(
                f"{col.name}.range",
                f"{col.name} between {col.min} and {col.max}",
                E.ExpectColumnValuesToBeBetween(
                    column=col.name, min_value=col.min, max_value=col.max
                ),
                lambda value=value, low=col.min, high=col.max: _outside(value(), low, high),
            )
        if col.pattern:
            add(
                f"{col.name}.pattern",
                f"{col.name} matches {col.pattern}",
                E.ExpectColumnValuesToMatchRegex(column=col.name, regex=col.pattern),
                lambda value=value, regex=col.pattern: ~value().cast("string").rlike(regex),
            )
        if col.has_code_check:
            assert col.rule is not None
            standard = STANDARDS[col.rule.value]
            add(
                f"{col.name}.code",
                f"{col.name} is {standard.title}",
                ExpectColumnValuesToMeetCodeStandard(column=col.name, standard=col.rule.value),
                lambda value=value, valid=standard.valid: ~valid(value()),
            )
    key = list(table.primary_key)
    if len(key) == 1:
        add("primary_key.unique", f"{key[0]} unique", E.ExpectColumnValuesToBeUnique(column=key[0]))
    elif key:
        add(
            "primary_key.unique",
            f"({', '.join(key)}) unique",
            E.ExpectCompoundColumnsToBeUnique(column_list=key),
        )
    return checks


def _column(name: str) -> Callable[[], SparkColumn]:
    def value() -> SparkColumn:
        import pyspark.sql.functions as F

        return F.col(name)

    return value


def _outside(value: SparkColumn, low: float | None, high: float | None) -> SparkColumn:
    below = value < low if low is not None else None
    above = value > high if high is not None else None
    if below is None:
        assert above is not None
        return above
    return below if above is None else below | above


def reject_rate_name(max_reject_rate: float) -> str:
    return f"quarantined share <= {max_reject_rate:.0%}"
