"""Gate policy per check, declared in the contract (`gate_policy`): a `warn` check's failure is
recorded and lets the table through; a `quarantine` check moves its failing rows out and the
rest goes on; a `block` check (the default) stops it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from citylake.settings import Settings
from quality.gate import CheckResult, GateBlocked, GateResult, enforce
from quality.suites import contract_checks
from warehouse_layers.contract import TableContract


def _contract(*, lines: bool = False, **policy: str) -> TableContract:
    """A small DWD contract; with `lines`, its sale id derives from a feed, so its rows carry
    their delivered line (what a quarantine needs)."""
    derived = {"source": "sale_id", "rule": "key"} if lines else {}
    return TableContract.model_validate(
        {
            "name": "dwd_demo_sale",
            "layer": "dwd",
            "domain": "payment",
            "owner_department": "市商务局",
            "description": {"zh": "示例", "en": "Example"},
            "retention_days": 30,
            "primary_key": ["sale_id"],
            "columns": [
                {"name": "sale_id", "type": "string", "nullable": False,
                 "description": {"zh": "编号", "en": "Id"}, **derived},
                {"name": "liters", "type": "double", "min": 0, "max": 100,
                 "description": {"zh": "升数", "en": "Liters"}},
            ],
            "gate_policy": policy,
        }
    )  # fmt: skip


def test_checks_take_their_policy_from_the_contract() -> None:
    checks = contract_checks(_contract(**{"liters.range": "warn"}))
    assert {c.name: c.severity for c in checks} == {
        "sale_id not null": "block",
        "liters between 0.0 and 100.0": "warn",
        "sale_id unique": "block",
    }
    assert _contract().check_keys() == ["sale_id.not_null", "liters.range", "primary_key.unique"]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"liters.not_null": "warn"}, "does not declare: \\['liters.not_null'\\]"),  # nullable
        ({"volume.range": "warn"}, "does not declare"),
        ({"liters.range": "ignore"}, "'block', 'quarantine' or 'warn'"),
    ],
)
def test_a_policy_for_an_undeclared_check_or_an_unknown_policy_is_refused(
    policy: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _contract(**policy)


def test_quarantine_is_for_row_level_checks_of_rows_that_name_their_line() -> None:
    checks = contract_checks(_contract(lines=True, **{"liters.range": "quarantine"}))
    ranged = next(c for c in checks if c.name.startswith("liters between"))
    assert ranged.severity == "quarantine" and ranged.row is not None
    assert (ranged.row.column, ranged.row.reason) == ("liters", "gate_range")
    unique = next(c for c in checks if c.name == "sale_id unique")
    assert unique.row is None  # no single row fails a uniqueness check
    with pytest.raises(ValidationError, match=r"row-level check .* not \['primary_key.unique'\]"):
        _contract(lines=True, **{"primary_key.unique": "quarantine"})
    with pytest.raises(ValidationError, match="rows name their delivered line"):
        _contract(**{"liters.range": "quarantine"})  # no column derives from a feed


def test_a_failed_warning_does_not_block_a_failed_block_does() -> None:
    warned = CheckResult("liters between 0.0 and 100.0", "warn", False, 1, 50.0, ["120.0"])
    passed = CheckResult("sale_id not null", "block", True, 0, 0.0, [])
    result = GateResult(gate="dwd→dws", table="dwd_demo_sale", rows=2, checks=[warned, passed])
    assert not result.blocked and result.failed == [warned]
    assert "warned on table dwd_demo_sale" in result.describe()
    broken = CheckResult("sale_id not null", "block", False, 1, 50.0, ["None"])
    assert GateResult("dwd→dws", "dwd_demo_sale", 2, [warned, broken]).blocked


@pytest.mark.spark
def test_enforce_lets_a_warned_table_through_and_stops_a_blocked_one(spark, lake: Settings) -> None:
    rows = spark.createDataFrame([("S1", 10.0), ("S2", 120.0)], "sale_id string, liters double")
    result = enforce(
        rows,
        contract_checks(_contract(**{"liters.range": "warn"})),
        gate="dwd→dws",
        table="dwd_demo_sale",
        settings=lake,
    )
    assert [(c.check, c.severity, c.unexpected_count) for c in result.failed] == [
        ("liters between 0.0 and 100.0", "warn", 1)
    ]
    with pytest.raises(GateBlocked, match=r"liters between 0\.0 and 100\.0"):
        enforce(
            rows, contract_checks(_contract()), gate="dwd→dws", table="dwd_demo_sale", settings=lake
        )
