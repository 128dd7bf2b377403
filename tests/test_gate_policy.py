"""Gate policy per check, declared in the contract (`gate_policy`): a `warn` check's failure is
recorded and lets the table through; a `quarantine` check moves its failing rows out and the
rest goes on; a `block` check (the default) stops it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from citylake.settings import Settings
from quality.gate import CheckResult, GateBlocked, GateResult, enforce
from quality.suites import contract_checks
from tests.demo_contract import demo_sale_contract
from warehouse_layers.contract import TableContract


def _contract(*, lines: bool = False, **policy: str) -> TableContract:
    """A small DWD contract; with `lines`, its sale id derives from a feed, so its rows carry
    their delivered line (what a quarantine needs)."""
    liters = {"name": "liters", "type": "double", "min": 0, "max": 100,
              "description": {"zh": "升数", "en": "Liters"}}  # fmt: skip
    derived = {"source": "sale_id", "rule": "key"} if lines else {}
    return demo_sale_contract([liters], sale_id=derived, gate_policy=policy)


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


# --- One build, planted defects in two domains (spark tier) ---------------------------------

D5, D6 = "2024-11-05", "2024-11-06"
ORDER_HEADER = ["order_id", "merchant_id", "platform", "order_time", "gmv_fen",
                "commission_fen", "status", "updated_at"]  # fmt: skip
# What a merchant order feeds and a transaction does not: held while the orders are blocked,
# dws_enterprise_monthly although it reads the (promoted) payment DWS too.
BELOW_ORDERS = ("dws_enterprise_monthly", "ads_inclusion_candidates")
SETTLEMENT_HEADER = ["merchant_id", "settle_date", "gross_fen", "fee_fen", "net_fen",
                     "settle_bank_code", "settle_bank_local"]  # fmt: skip


def _order(oid: str, gmv: str, day: str) -> list[str]:
    at = f"{day}T10:00:00+08:00"
    return [oid, "M1", "meituan", at, gmv, "10", "paid", at]


@pytest.fixture
def policed(lake: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The lake with contracts where dwd_pay_transaction quarantines a gross above 5,000 yuan
    and warns on a sector other than catering (checks of derived columns: only the DWD→DWS
    gate sees them)."""
    import shutil

    import yaml

    from citylake.settings import get_settings

    root = tmp_path / "contracts"
    shutil.copytree(lake.contracts_dir, root)
    path = root / "dwd" / "dwd_pay_transaction.yaml"
    contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    for column in contract["columns"]:
        if column["name"] == "gross_fen":
            column["max"] = 500_000
        if column["name"] == "sector":
            column["values"] = ["catering"]
    contract["gate_policy"] = {"gross_fen.range": "quarantine", "sector.values": "warn"}
    path.write_text(yaml.safe_dump(contract, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CITYLAKE_CONTRACTS_DIR", str(root))
    get_settings.cache_clear()
    return get_settings()


@pytest.mark.spark
def test_a_block_holds_its_domain_a_quarantine_moves_rows_a_warning_records(
    spark, policed: Settings
) -> None:
    from pathlib import Path

    import pyspark.sql.functions as F

    from pipelines import tables
    from pipelines.build import BuildBlocked, build
    from pipelines.ingest import ingest_file
    from tests.payment_files import TXN_HEADER, registry, txn, write

    landing = Path(policed.landing)

    def deliver(feed: str, day: str, header: list[str], rows: list[list[str]]) -> None:
        ingest_file(write(landing, feed, day, f"{feed}.csv", header, rows), feed)

    def versions() -> dict[str, int]:
        return {n: tables.version(spark, tables.contract(n)) for n in BELOW_ORDERS}

    ingest_file(registry(landing), "merchant_registry")  # M1 catering, M2 retail
    deliver("pay_transactions", D5, TXN_HEADER, [txn("T1", "M1", f"{D5}T12:00:00+08:00", 1000)])
    deliver("merchant_orders", D5, ORDER_HEADER, [_order("O1", "5000", D5)])
    build(dt.date(2024, 11, 5), dt.date(2024, 11, 5))
    before = versions()
    below = {n: sorted(map(str, tables.read(spark, tables.contract(n)).collect())) for n in before}

    # D6: one good sale, one above the quarantine bound, one of a retail merchant (warned);
    # and orders that are mostly no amounts: the ODS→DWD gate of the orders blocks.
    at = f"{D6}T09:00:00+08:00"
    sales = [txn("T10", "M1", at, 1000), txn("T11", "M1", at, 600_000), txn("T12", "M2", at, 2000)]
    deliver("pay_transactions", D6, TXN_HEADER, sales)
    orders = [_order(f"O{i}", "n/a", D6) for i in range(2, 6)] + [_order("O6", "300", D6)]
    deliver("merchant_orders", D6, ORDER_HEADER, orders)
    # and settlements, one of a merchant the registry does not know: a cross check that warns.
    settled = [["M1", D6, "1000", "6", "994", "B1", "Y"], ["M9", D6, "500", "3", "497", "B1", "N"]]
    deliver("pay_settlements", D6, SETTLEMENT_HEADER, settled)
    with pytest.raises(BuildBlocked) as blocked:
        build(dt.date(2024, 11, 6), dt.date(2024, 11, 6))
    assert [b.result.table for b in blocked.value.blocks] == ["ods_merchant_orders"]
    assert "dwd_merchant_order" in blocked.value.held

    # (a) The orders' downstream is as it was; payment (the other domain) went on.
    assert versions() == before
    assert {
        n: sorted(map(str, tables.read(spark, tables.contract(n)).collect())) for n in before
    } == below
    ads = tables.read(spark, tables.contract("ads_trade_daily")).where(F.col("biz_date") == D6)
    gross = {r["sector"]: r["gross_fen"] for r in ads.collect()}
    assert gross == {"catering": 1000, "retail": 2000}  # T11 quarantined, T12 warned and in

    # (b) The quarantined sale: in dwd_quarantine with the check's reason, out of DWD; every
    # delivered transaction line is in exactly one of them.
    quarantine = tables.read(spark, tables.contract("dwd_quarantine"))
    moved = quarantine.where(F.col("feed") == "pay_transactions").collect()
    assert [(r.table_name, r.reason_code, r.column_name, r.bad_value) for r in moved] == [
        ("dwd_pay_transaction", "gate_range", "gross_fen", "600000")
    ]
    assert '"T11"' in moved[0].raw_record and str(moved[0].business_date) == D6
    dwd = tables.read(spark, tables.contract("dwd_pay_transaction"))
    assert sorted(r.txn_id for r in dwd.collect()) == ["T1", "T10", "T12"]
    delivered = tables.read(spark, tables.contract("ods_pay_transactions")).count()
    assert delivered == dwd.count() + len(moved) == 4

    # (c) and the gate outcome of the run: the quarantined count, the warning, the block.
    outcome = tables.read(spark, tables.contract("dwd_gate_outcome")).where("NOT success")
    failed = {(r.table_name, r.severity, r.unexpected_count) for r in outcome.collect()}
    assert {
        ("dwd_pay_transaction", "quarantine", 1),
        ("dwd_pay_transaction", "warn", 1),
        ("ods_merchant_orders", "block", 4),
    } <= failed
    detail = outcome.where("severity = 'quarantine'").first().detail
    assert "quarantined 1 rows into dwd_quarantine" in detail

    # (d) The cross checks judged at the same gates: the unknown merchant is warned with its
    # id and its settlement promoted; two days of trade are too few for the band to judge.
    assert ("dwd_pay_settlement", "warn", 1) in failed
    checks = {c.check: c for g in blocked.value.build.gates for c in g.checks}
    unknown = checks["merchant_id exists in dwd_merchant"]
    assert (unknown.success, unknown.unexpected_percent, unknown.examples) == (False, 50.0, ["M9"])
    band = next(c for name, c in checks.items() if name.startswith("daily gross_fen"))
    assert (band.success, band.unexpected_count) == (True, 0)
    settlements = tables.read(spark, tables.contract("dwd_pay_settlement")).collect()
    assert sorted(r.merchant_id for r in settlements) == ["M1", "M9"]


def _build_cli(day: dt.date) -> tuple[list[str], list[str]]:
    """`citylake build` of the day: the tables held and the tables whose gates blocked."""
    from pipelines.build import BuildBlocked, build

    with pytest.raises(BuildBlocked) as blocked:
        build(day, day)
    return blocked.value.held, [b.result.table for b in blocked.value.blocks]


def _build_layer_dag(day: dt.date) -> tuple[list[str], list[str]]:
    """The payment layer DAG's two tasks, as Airflow runs them (JSON state between them): the
    `dwd` task succeeds with what its gates held, `dws_ads` promotes the rest, then fails."""
    import json

    from pipelines import runs

    state = json.loads(json.dumps(runs.domain_dwd("payment", day, day)))
    with pytest.raises(runs.LayersHeld, match="BLOCKED on table ods_pay_transactions"):
        runs.domain_dws_ads(state)
    return state["held"], [re.findall(r"BLOCKED on table (\w+)", b)[0] for b in state["blocked"]]


@pytest.mark.spark
@pytest.mark.parametrize("run", [_build_cli, _build_layer_dag], ids=["build", "layer DAG"])
def test_a_block_of_the_transactions_leaves_the_merchants_promoted(
    run: Callable[[dt.date], tuple[list[str], list[str]]], spark, lake: Settings
) -> None:
    """Payment writes and judges its merchants before its transactions: when the transactions'
    gate blocks, the merchants and what reads them without a transaction (the settlements'
    fund backflow) go on, and the trade stays as it was; in `citylake build` and in the
    payment layer DAG alike."""
    from pathlib import Path

    import pyspark.sql.functions as F

    from pipelines import tables
    from pipelines.build import build
    from pipelines.ingest import ingest_file
    from tests.payment_files import TXN_HEADER, merchant, registry, txn, write

    landing = Path(lake.landing)

    def deliver(feed: str, day: str, header: list[str], rows: list[list[str]]) -> None:
        ingest_file(write(landing, feed, day, f"{feed}.csv", header, rows), feed)

    def read(name: str):
        return tables.read(spark, tables.contract(name))

    ingest_file(registry(landing), "merchant_registry")  # M1 零陵区, M2 冷水滩区
    deliver("pay_transactions", D5, TXN_HEADER, [txn("T1", "M1", f"{D5}T12:00:00+08:00", 1000)])
    build(dt.date(2024, 11, 5), dt.date(2024, 11, 5))
    trade = tables.version(spark, tables.contract("ads_trade_daily"))

    # D6: a new merchant M3 (冷水滩区) and its settlement; transactions mostly without amounts.
    new = [merchant("M3", "431103", updated=f"{D6}T08:00:00+08:00")]
    ingest_file(registry(landing, D6, new), "merchant_registry")
    at = f"{D6}T09:00:00+08:00"
    sales = [txn(f"T{i}", "M1", at, "n/a") for i in range(2, 6)] + [txn("T6", "M3", at, 700)]
    deliver("pay_transactions", D6, TXN_HEADER, sales)
    deliver("pay_settlements", D6, SETTLEMENT_HEADER, [["M3", D6, "1000", "6", "994", "B1", "Y"]])
    held, blocked = run(dt.date(2024, 11, 6))

    assert blocked == ["ods_pay_transactions"]
    assert "dwd_pay_transaction" in held
    assert "dwd_merchant" not in held
    assert {r.merchant_id for r in read("dwd_merchant").collect()} == {"M1", "M2", "M3"}
    assert [r.txn_id for r in read("dwd_pay_transaction").collect()] == ["T1"]
    assert tables.version(spark, tables.contract("ads_trade_daily")) == trade
    backflow = read("ads_fund_backflow_monthly").where(F.col("district_code") == "431103")
    assert [(r.settled_net_fen, r.backflow_rate) for r in backflow.collect()] == [(994, 1.0)]
