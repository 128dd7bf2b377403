"""Gate outcomes as rows of dwd_gate_outcome: which feeds a checked table derives from, which
business dates a build's gates covered, one append per flush and the blocking outcome kept."""

from __future__ import annotations

import datetime as dt

import pytest

from citylake.settings import Settings
from pipelines import tables
from pipelines.dwd.gate_outcome import kept_outcomes, outcome_rows, table_feeds
from quality.gate import CheckResult, GateBlocked, GateResult, collecting, record

D5, D7 = dt.date(2024, 11, 5), dt.date(2024, 11, 7)


def _result(table: str, *checks: tuple[str, bool], gate: str = "dwd→dws") -> GateResult:
    return GateResult(
        gate=gate,
        table=table,
        rows=10,
        checks=[
            CheckResult(name, "block", ok, 0 if ok else 2, 0.0 if ok else 20.0, [])
            for name, ok in checks
        ],
        at="2024-11-08T01:00:00+00:00",
    )


def test_a_table_derives_from_the_feeds_of_its_upstream_lineage() -> None:
    contracts = tables.contracts()
    assert table_feeds("ods_pay_transactions", contracts) == ["pay_transactions"]
    # transactions carry the merchant's district and sector: both feeds stand behind them
    assert table_feeds("dwd_pay_transaction", contracts) == [
        "merchant_registry",
        "pay_transactions",
    ]
    assert table_feeds("dwd_dim_district", contracts) == []  # from a package, no feed
    # the model audits name every model table of the run
    assert table_feeds("ads_tax_monthly, ads_fund_backflow_monthly", contracts) == [
        "gov_enterprise_registry", "gov_tax_monthly", "merchant_registry", "pay_settlements",
    ]  # fmt: skip


def test_one_row_per_check_with_feeds_and_covered_dates() -> None:
    results = [
        _result("dwd_merchant", ("merchant_id not null", True), ("status in [...]", False)),
        _result("ods_pay_transactions", ("quarantined share <= 5%", True), gate="ods→dwd"),
    ]
    rows = outcome_rows(results, (D5, D7), tables.contracts()).to_pylist()
    assert [(r["table_name"], r["check_name"], r["success"]) for r in rows] == [
        ("dwd_merchant", "merchant_id not null", True),
        ("dwd_merchant", "status in [...]", False),
        ("ods_pay_transactions", "quarantined share <= 5%", True),
    ]
    assert rows[0]["feeds"] == ["merchant_registry"]
    assert rows[2]["feeds"] == ["pay_transactions"]
    assert {(r["date_from"], r["date_to"]) for r in rows} == {(D5, D7)}
    assert rows[1]["unexpected_count"] == 2 and rows[1]["rows_checked"] == 10
    assert rows[0]["run_at"] == dt.datetime(2024, 11, 8, 1, tzinfo=dt.UTC)


def test_collecting_receives_every_recorded_outcome(lake: Settings) -> None:
    first, second = _result("dwd_merchant", ("a", True)), _result("dwd_merchant", ("b", False))
    record(first, lake)
    with collecting() as outer:
        record(first, lake)
        with collecting() as inner:
            record(second, lake)
    record(second, lake)
    assert outer == [first, second] and inner == [second]
    assert len((lake.var_dir / "quality" / "gate_runs.jsonl").read_text().splitlines()) == 4


@pytest.mark.spark
def test_kept_outcomes_append_once_per_flush_and_keep_a_blocking_one(spark, lake: Settings) -> None:
    table = tables.contract("dwd_gate_outcome")
    passed = _result("dwd_merchant", ("merchant_id not null", True), ("status in [...]", True))
    blocked = _result("ods_pay_transactions", ("quarantined share <= 5%", False), gate="ods→dwd")
    with pytest.raises(GateBlocked), kept_outcomes(D5, D7, lake) as keep:
        record(passed, lake)
        assert keep() == 2 and keep() == 0  # the second flush has nothing new
        record(blocked, lake)
        raise GateBlocked(blocked)
    assert tables.version(spark, table, lake) == 2  # created, then one commit per flush
    rows = tables.read(spark, table, settings=lake).collect()
    assert {r["check_name"]: r["success"] for r in rows} == {
        "merchant_id not null": True,
        "status in [...]": True,
        "quarantined share <= 5%": False,
    }
    assert {(r["date_from"], r["date_to"]) for r in rows} == {(D5, D7)}
    assert {tuple(r["feeds"]) for r in rows} == {("merchant_registry",), ("pay_transactions",)}
