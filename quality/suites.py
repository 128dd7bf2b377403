"""Expectation suites generated from a table contract: say each rule once, check it everywhere.

nullable: false -> not null; primary_key -> unique; values -> in set; min/max -> between;
pattern -> regex. Every check blocks promotion unless the contract's `gate_policy` makes it a
warning (`TableContract.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations as gx
from great_expectations.expectations import Expectation

from warehouse_layers.contract import GatePolicy, TableContract

Severity = GatePolicy


@dataclass(frozen=True)
class Check:
    name: str  # stable, human-readable: what is checked, on which column
    expectation: Expectation
    severity: Severity = "block"


def contract_checks(table: TableContract) -> list[Check]:
    E = gx.expectations
    checks: list[Check] = []

    def add(key: str, name: str, expectation: Expectation) -> None:
        checks.append(Check(name, expectation, table.policy(key)))

    for col in table.columns:
        if not col.nullable:
            add(
                f"{col.name}.not_null",
                f"{col.name} not null",
                E.ExpectColumnValuesToNotBeNull(column=col.name),
            )
        if col.values:
            add(
                f"{col.name}.values",
                f"{col.name} in {list(col.values)}",
                E.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.values)),
            )
        if col.min is not None or col.max is not None:
            add(
                f"{col.name}.range",
                f"{col.name} between {col.min} and {col.max}",
                E.ExpectColumnValuesToBeBetween(
                    column=col.name, min_value=col.min, max_value=col.max
                ),
            )
        if col.pattern:
            add(
                f"{col.name}.pattern",
                f"{col.name} matches {col.pattern}",
                E.ExpectColumnValuesToMatchRegex(column=col.name, regex=col.pattern),
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


def reject_rate_name(max_reject_rate: float) -> str:
    return f"quarantined share <= {max_reject_rate:.0%}"
