"""Cross checks (issue #5): what one column cannot say, declared in the contract's
`cross_checks`, judged at the DWD→DWS gate with its policy (`warn` unless `gate_policy` says
otherwise). Contract validation and the band's arithmetic are pure Python; each check's
aggregate runs on a tiny Spark frame."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from citylake.settings import Settings
from quality.cross_checks import daily_band, judge_days, references
from quality.gate import GateBlocked, enforce
from quality.suites import contract_checks
from tests.demo_contract import demo_sale_contract
from warehouse_layers.contract import ContractError, DailyBand, TableContract, load_contracts

ROOT = Path(__file__).resolve().parent.parent / "warehouse_layers"
BAND = {"kind": "daily_band", "day": "sale_date", "add": ["amount_fen"], "low": 0.5, "high": 2.0}
REFS = {"kind": "references", "column": "merchant_id", "table": "dwd_merchant"}


def _contract(*cross: dict, **policy: str) -> TableContract:
    return demo_sale_contract(
        [
            {"name": "merchant_id", "type": "string", "description": {"zh": "商户", "en": "M"}},
            {"name": "sale_date", "type": "date", "description": {"zh": "日期", "en": "Day"}},
            {"name": "amount_fen", "type": "bigint", "description": {"zh": "额", "en": "Fen"}},
            {"name": "refund_fen", "type": "bigint", "description": {"zh": "退", "en": "Ref"}},
        ],
        cross_checks=list(cross),
        gate_policy=policy,
    )


# --- the contract ---------------------------------------------------------------------------


def test_cross_checks_have_keys_for_gate_policy_and_warn_by_default() -> None:
    table = _contract(REFS, BAND, **{"sale_date.daily_band": "block"})
    assert table.check_keys()[-2:] == ["merchant_id.references", "sale_date.daily_band"]
    assert table.policy("merchant_id.references") == "warn"
    assert table.policy("sale_date.daily_band") == "block"
    assert table.policy("sale_id.not_null") == "block"  # column checks keep their default
    assert [c.name for c in contract_checks(table)] == ["sale_id not null", "sale_id unique"]


def test_the_shipped_payment_contracts_declare_the_two_cross_checks_warning() -> None:
    contracts = load_contracts(ROOT)
    settlement, txn = contracts["dwd_pay_settlement"], contracts["dwd_pay_transaction"]
    assert [(c.key, settlement.policy(c.key)) for c in settlement.cross_checks] == [
        ("merchant_id.references", "warn")
    ]
    (band,) = txn.cross_checks
    assert isinstance(band, DailyBand) and txn.policy(band.key) == "warn"
    assert (band.add, band.subtract, band.window) == (("gross_fen",), ("refund_fen",), 28)


@pytest.mark.parametrize(
    ("cross", "policy", "message"),
    [
        ({**REFS, "column": "shop_id"}, {}, r"names unknown columns \['shop_id'\]"),
        ({**BAND, "day": "sale_id"}, {}, "'sale_id' is not a date"),
        ({**BAND, "add": ["merchant_id"]}, {}, r"\['merchant_id'\] are not numeric"),
        ({**BAND, "low": 2.0, "high": 0.5}, {}, "band low 2.0 must be below high 0.5"),
        ({**BAND, "min_days": 30}, {}, "min_days 30 exceeds the window of 28"),
        ({**BAND, "kind": "spike"}, {}, "does not match any of the expected tags"),
        ({**BAND, "median": 3}, {}, "Extra inputs are not permitted"),
        (REFS, {"merchant_id.references": "quarantine"}, "row-level check"),
        (REFS, {"merchant_id.daily_band": "warn"}, "does not declare"),
    ],
)
def test_a_bad_cross_check_is_refused(cross: dict, policy: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _contract(cross, **policy)


def test_a_cross_check_twice_and_a_reference_to_an_unknown_table_are_refused(tmp_path) -> None:
    with pytest.raises(ValidationError, match=r"declares \['sale_date.daily_band'\] more than"):
        _contract(BAND, {**BAND, "high": 3.0})
    import shutil

    import yaml

    root = tmp_path / "contracts"
    shutil.copytree(ROOT, root)
    path = root / "dwd" / "dwd_pay_settlement.yaml"
    contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    contract["cross_checks"] = [{**REFS, "table": "dwd_enterprise"}]  # has no merchant_id
    path.write_text(yaml.safe_dump(contract, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContractError, match=r"cross_checks\.0\.table: no table dwd_enterprise"):
        load_contracts(root)


# --- the band, in Python ----------------------------------------------------------------------

DAY0 = dt.date(2024, 11, 1)
CHECK = DailyBand.model_validate({**BAND, "window": 5, "min_days": 3})


def _days(*totals: float) -> dict[dt.date, float]:
    return {DAY0 + dt.timedelta(days=i): t for i, t in enumerate(totals)}


def test_a_day_is_judged_against_the_median_of_the_days_before_it() -> None:
    # Days 0-5: 90, 110, 100, 400, 100, 290. Day 3: history 90, 110, 100 -> median 100,
    # band [50, 200]: 400 is outside. Day 4: median of 90, 110, 100, 400 = 105 -> 100 is in.
    # Day 5: the last 5 days 90, 110, 100, 400, 100 -> median 100, band [50, 200]: 290 out.
    totals = _days(90, 110, 100, 400, 100, 290)
    result = judge_days(totals, set(totals), CHECK, "warn")
    assert not result.success
    assert (result.unexpected_count, result.unexpected_percent) == (2, pytest.approx(200 / 3))
    assert result.examples == [
        "2024-11-04: 400 outside [50, 200] (median 100)",
        "2024-11-06: 290 outside [50, 200] (median 100)",
    ]


def test_only_the_judged_days_with_enough_history_count() -> None:
    totals = _days(100, 1000, 5, 100)  # days 1 and 2 wild, but fewer than 3 days before them
    assert judge_days(totals, set(totals), CHECK, "warn").examples == []  # day 3: median 100
    assert judge_days(_days(100, 100, 100, 900), {DAY0}, CHECK, "warn").success  # day 3 not asked
    nothing = judge_days(_days(100, 100), set(_days(100, 100)), CHECK, "block")
    assert (nothing.success, nothing.unexpected_count, nothing.unexpected_percent) == (True, 0, 0)


# --- the aggregates, on tiny frames (spark tier) ------------------------------------------


@pytest.mark.spark
def test_a_settlement_of_an_unregistered_merchant_fails_with_its_id(spark) -> None:
    merchants = spark.createDataFrame([("M1",), ("M2",)], "merchant_id string")
    settled = spark.createDataFrame(
        [("M1",), ("M9",), ("M9",), ("M2",), (None,)], "merchant_id string"
    )
    check = _contract(REFS).cross_checks[0]
    result = references(settled, merchants, check, "warn")
    assert (result.check, result.severity, result.success) == (
        "merchant_id exists in dwd_merchant",
        "warn",
        False,
    )
    assert (result.unexpected_count, result.unexpected_percent, result.examples) == (
        2,
        40.0,
        ["M9"],
    )
    assert references(settled.where("merchant_id <> 'M9'"), merchants, check, "warn").success


@pytest.mark.spark
def test_a_day_at_three_times_the_median_fails_one_within_the_band_passes(spark) -> None:
    # 14 days of 1,000 fen (two sales of 600 less a refund of 200), then day 14 at 3,000 and
    # day 15 at 1,500 (median of the 28 days before: 1,000; band [500, 2,000]).
    rows = [
        (DAY0 + dt.timedelta(days=d), amount, refund)
        for d in range(14)
        for amount, refund in ((600, 200), (600, 0))
    ]
    rows += [(DAY0 + dt.timedelta(days=14), 3000, 0), (DAY0 + dt.timedelta(days=15), 1500, None)]
    sales = spark.createDataFrame(rows, "sale_date date, amount_fen bigint, refund_fen bigint")
    check = DailyBand.model_validate({**BAND, "subtract": ["refund_fen"]})
    result = daily_band(sales, "sale_date >= '2024-11-15'", check, "block")
    assert (result.success, result.unexpected_count, result.unexpected_percent) == (
        False,
        1,
        50.0,
    )
    assert result.examples == ["2024-11-15: 3000 outside [500, 2000] (median 1000)"]
    assert daily_band(sales, "sale_date = '2024-11-16'", check, "block").success
    young = DailyBand.model_validate({**BAND, "min_days": 20})  # 14 days of history: not judged
    assert daily_band(sales, None, young, "block").unexpected_count == 0
    # A day 60 days before is outside day 14's lookback (2 × 28 calendar days): its history
    # stays 14 days, too few for min_days 15; judging the whole table (no range) counts it.
    # A row without a day is no day: it is not judged and judges nothing.
    early_and_dayless = [(DAY0 - dt.timedelta(days=60), 1000, 0), (None, 10**6, 0)]
    far = sales.union(spark.createDataFrame(early_and_dayless, sales.schema))
    fifteen = DailyBand.model_validate({**BAND, "subtract": ["refund_fen"], "min_days": 15})
    assert daily_band(far, "sale_date = '2024-11-15'", fifteen, "block").unexpected_count == 0
    assert daily_band(far, None, fifteen, "block").unexpected_count == 1


@pytest.mark.spark
def test_a_blocking_cross_check_blocks_through_enforce(spark, lake: Settings) -> None:
    table = _contract(REFS, **{"merchant_id.references": "block"})
    sales = spark.createDataFrame(
        [("S1", "M9", None, None, None)],
        "sale_id string, merchant_id string, sale_date date, amount_fen bigint, refund_fen bigint",
    )
    known = spark.createDataFrame([("M1",)], "merchant_id string")
    policy = table.policy("merchant_id.references")
    judged = [references(sales, known, table.cross_checks[0], policy)]
    with pytest.raises(GateBlocked, match=r"\[block\] merchant_id exists in dwd_merchant.*M9"):
        enforce(
            sales, contract_checks(table), gate="dwd→dws", table=table.name, settings=lake,
            judged=judged,
        )  # fmt: skip
    warned = _contract(REFS)
    judged = [references(sales, known, warned.cross_checks[0], "warn")]
    result = enforce(
        sales, contract_checks(warned), gate="dwd→dws", table=table.name, settings=lake,
        judged=judged,
    )  # fmt: skip
    assert [(c.check, c.severity) for c in result.failed] == [
        ("merchant_id exists in dwd_merchant", "warn")
    ]
