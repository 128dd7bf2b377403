"""Restatement through the models: a late refund rebuilds exactly the days it touches, a
rebuilt day is byte-identical, and a failing model audit leaves the cockpit as it was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from citylake.settings import Settings
from pipelines import tables
from pipelines.build import build
from pipelines.ingest import ingest_file
from pipelines.modeling.runner import build_models, day_runs
from quality.gate import GateBlocked
from tests.payment_files import TXN_HEADER, registry, txn, write

pytestmark = pytest.mark.spark

D5, D6, D7, D9 = (dt.date(2024, 11, d) for d in (5, 6, 7, 9))


def _rows(spark, name: str, day: dt.date) -> list[dict]:
    rows = tables.read(spark, tables.contract(name)).where(F.col("biz_date") == day).collect()
    return sorted((r.asDict() for r in rows), key=lambda r: sorted(map(str, r.values())))


def _deliver(lake: Settings, day: dt.date, name: str, rows: list[list[str]]) -> None:
    path = write(Path(lake.landing), "pay_transactions", str(day), name, TXN_HEADER, rows)
    ingest_file(path, "pay_transactions")


def _without_computed_at(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "_computed_at"} for r in rows]


def test_day_runs_split_days_into_contiguous_runs() -> None:
    days = [D9, D5, D6, D6, D7 + dt.timedelta(days=3)]
    assert day_runs(days) == [(D5, D6), (D9, dt.date(2024, 11, 10))]


def test_late_refund_rebuilds_exactly_its_original_day(spark, lake: Settings) -> None:
    ingest_file(registry(Path(lake.landing)), "merchant_registry")
    for day in (D5, D6, D7):
        _deliver(lake, day, f"{day}.csv", [txn(f"T{day.day}", "M1", f"{day}T12:00:00+08:00", 1000)])
    build(D5, D7)
    before = {day: _rows(spark, "ads_trade_daily", day) for day in (D5, D6, D7)}
    assert [r["net_fen"] for r in before[D5]] == [1000]

    # Delivered on 11-09: a refund of the 11-05 sale. Building 11-09 restates 11-05 only.
    refund = txn("R5", "M1", "2024-11-09T09:00:00+08:00", 300, status="refund", refund_of="T5")
    _deliver(lake, D9, "late.csv", [refund])
    result = build(D9, D9)
    assert result.days == {D5}
    # Where the time went: the steps, and under the DWD step each domain unit by its label.
    assert "DWS/ADS models" in result.seconds
    assert {"payment DWD", "fuel DWD", "dwd_tax_monthly"} <= set(result.unit_seconds)
    after = {day: _rows(spark, "ads_trade_daily", day) for day in (D5, D6, D7)}
    assert [(r["refund_fen"], r["net_fen"]) for r in after[D5]] == [(300, 700)]
    assert after[D5][0]["_computed_at"] > before[D5][0]["_computed_at"]
    # 11-06 and 11-07 were not rebuilt: the very same rows, computed at the same instant.
    assert after[D6] == before[D6] and after[D7] == before[D7]
    assert _rows(spark, "ads_trade_daily", D9) == []

    # Rebuilding a past day twice gives byte-identical rows except _computed_at.
    build(D5, D5)
    first = _rows(spark, "ads_trade_daily", D5)
    build(D5, D5)
    again = _rows(spark, "ads_trade_daily", D5)
    assert _without_computed_at(first) == _without_computed_at(again)
    assert '"ods_pay_transactions"' in first[0]["_input_versions"]


def test_failing_model_audit_blocks_and_restores_the_model_tables(spark, lake: Settings) -> None:
    ingest_file(registry(Path(lake.landing)), "merchant_registry")
    _deliver(lake, D5, "d5.csv", [txn("T1", "M1", "2024-11-05T12:00:00+08:00", 1000)])
    build(D5, D5)
    dws, ads = (tables.contract(n) for n in ("dws_trade_merchant_daily", "ads_trade_daily"))
    before = {t.name: _rows(spark, t.name, D5) for t in (dws, ads)}

    # A DWD row the DWS contract refuses (sector outside its values), written past the DWD gate.
    txn_table = tables.contract("dwd_pay_transaction")
    bad = tables.read(spark, txn_table).where("booked_date = '2024-11-05'").limit(1)
    tables.append(
        bad.withColumn("txn_id", F.lit("X1")).withColumn("sector", F.lit("casino")), txn_table
    )
    with pytest.raises(GateBlocked) as blocked:
        build_models(["dwd_pay_transaction"], [(D5, D5)], {}, lake)
    assert "dws_trade_merchant_daily" in str(blocked.value)
    assert {t.name: _rows(spark, t.name, D5) for t in (dws, ads)} == before


def test_contract_rows_audit_finds_broken_checks_and_shared_keys(spark, lake: Settings) -> None:
    """The one audit query of a model (models/audits/contract_rows.sql) on its rendered SQL:
    a row outside the contract's values and two rows of one key are found, a good row is not."""
    from sqlglot import exp

    from pipelines.modeling.project import context

    model = context(lake, offline=True).get_model("ads.ads_trade_daily")
    (name, args), *_ = model.audits
    query = model.render_audit_query(model.audit_definitions[name], **args, start=D5, end=D5)
    query = query.transform(
        lambda node: exp.to_table("audited") if isinstance(node, exp.Table) else node
    )
    row = {
        "biz_date": D5, "district_code": "431102", "channel": "wechat", "txn_count": 1,
        "gross_fen": 1, "refund_fen": 0, "net_fen": 1, "active_merchants": 1,
        "_computed_at": dt.datetime(2024, 11, 6), "_input_versions": "{}",
    }  # fmt: skip

    def found(*rows: dict) -> list[str]:
        lines = [row | r for r in rows]
        columns = {name: [line[name] for line in lines] for name in lines[0]}
        frame = tables.from_columns(spark, columns, tables.contract("ads_trade_daily"))
        frame.createOrReplaceTempView("audited")
        return sorted(r["sector"] for r in spark.sql(query.sql(dialect="spark")).collect())

    assert found({"sector": "catering"}, {"sector": "retail"}) == []
    assert found({"sector": "catering"}, {"sector": "casino"}) == ["casino"]
    assert found({"sector": "retail"}, {"sector": "retail"}, {"sector": "catering"}) == [
        "retail",
        "retail",
    ]
