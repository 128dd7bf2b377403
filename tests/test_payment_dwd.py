"""dwd_pay_settlement and dwd_merchant_order from hand-made ODS rows, expectations by hand.

Every delivered line ends in exactly one place: the DWD row of its key, superseded by a later
version of that key, or the quarantine with its reason and (delivery, line). Each table is
built and collected once (module fixtures).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
import pytest
from pyspark.sql import DataFrame, SparkSession

from pipelines.dwd.order import build_merchant_order
from pipelines.dwd.settlement import build_settlement
from pipelines.normalize import normalize
from warehouse_layers.contract import load_contracts

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = load_contracts(ROOT / "warehouse_layers")
D5, D6 = dt.date(2024, 11, 5), dt.date(2024, 11, 6)


def _ods(
    spark: SparkSession, table: str, deliveries: list[tuple[str, str, list[list[str]]]]
) -> DataFrame:
    """ODS rows of `table`: (delivery id, ingestion time, rows) per delivery, lines from 2."""
    columns = [c.name for c in CONTRACTS[table].feed_columns]
    rows = [
        (delivery, f"{delivery}.csv", line, dt.datetime.fromisoformat(at), *row)
        for delivery, at, lines in deliveries
        for line, row in enumerate(lines, start=2)
    ]
    schema = "_delivery_id string, _source_file string, _source_line bigint, _ingested_at "
    schema += "timestamp, " + ", ".join(f"{c} string" for c in columns)
    return spark.createDataFrame(rows, schema).withColumn(
        "_business_date", F.to_date("_ingested_at")
    )


def _built(rows: DataFrame, quarantine: DataFrame, key: list[str]) -> dict[str, Any]:
    return {
        "types": rows.dtypes,
        "rows": {tuple(r[k] for k in key): r.asDict() for r in rows.collect()},
        "quarantine": {
            (r.delivery_id, r.source_line): (r.reason_code, r.column_name, r.bad_value)
            for r in quarantine.collect()
        },
        "feeds": {r.feed for r in quarantine.select("feed", "table_name").collect()},
        "tables": {r.table_name for r in quarantine.select("table_name").collect()},
    }


def _contract_types(table: str) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in CONTRACTS[table].columns]


# --- settlements ------------------------------------------------------------------------------

# Two pulled pages (the feed has no updated_at: the page ingested later is the newer version).
# Columns: merchant_id, settle_date, gross_fen, fee_fen, net_fen, settle_bank_code,
# settle_bank_local.
SETTLEMENTS = [
    ("p1", "2024-11-06T02:00:00", [
        ["M001", "2024-11-05", "1000", "6", "994", "102", "Y"],  # 2: superseded by p2:2
        ["M002", "2024-11-05", "¥1,000", "６", "994", " 314 ", "y"],  # 3: normalized, kept
        ["M003", "2024-11-05", "500", "3", "490", "102", "N"],  # 4: 500 − 3 = 497 ≠ 490
        ["M004", "2024-11-05", "500", "3", "497", "102", "X"],  # 5: flag neither Y nor N
        ["M005", "2024/11/5", "800", "5", "795", "105", "N"],  # 6: kept (p2:3 is broken)
        ["M006", "2024-11-05", "-100", "0", "-100", "105", "N"],  # 7: negative gross
    ]),
    ("p2", "2024-11-07T02:00:00", [
        ["M001", "2024-11-05", "1000", "6", "994", "102", "N"],  # 2: M001's 11-05, now N
        ["M005", "2024-11-05", "800", "5", "700", "105", "N"],  # 3: broken re-send
        ["M001", "2024-11-06", "2000", "12", "1988", "102", "N"],  # 4: superseded by line 5
        ["M001", "2024-11-06", "2100", "12", "2088", "102", "N"],  # 5: same page, later line
    ]),
]  # fmt: skip


@pytest.fixture(scope="module")
def settlements(spark: SparkSession) -> dict[str, Any]:
    table = CONTRACTS["dwd_pay_settlement"]
    ods = _ods(spark, "ods_pay_settlements", SETTLEMENTS)
    rows, quarantine = build_settlement(normalize(ods, table), table)
    return _built(rows, quarantine, ["merchant_id", "settle_date"])


def test_settlements_are_typed_as_their_contract(settlements: dict[str, Any]) -> None:
    assert settlements["types"] == _contract_types("dwd_pay_settlement")


def test_the_latest_delivered_settlement_wins(settlements: dict[str, Any]) -> None:
    got = {
        key: (
            r["gross_fen"], r["fee_fen"], r["net_fen"], r["settle_bank_code"],
            r["settle_bank_local"], r["_delivery_id"], r["_source_line"],
        )
        for key, r in settlements["rows"].items()
    }  # fmt: skip
    assert got == {
        ("M001", D5): (1000, 6, 994, "102", "N", "p2", 2),  # the later page's version
        ("M001", D6): (2100, 12, 2088, "102", "N", "p2", 5),  # the later line of one page
        ("M002", D5): (1000, 6, 994, "314", "Y", "p1", 3),  # ¥, comma, full-width 6, y, spaces
        ("M005", D5): (800, 5, 795, "105", "N", "p1", 6),  # its broken re-send changes nothing
    }


def test_broken_settlements_are_quarantined_with_reason_and_line(
    settlements: dict[str, Any],
) -> None:
    assert settlements["quarantine"] == {
        ("p1", 4): ("net_mismatch", "net_fen", "490"),
        ("p1", 5): ("bad_value", "settle_bank_local", "X"),
        ("p1", 7): ("out_of_range", "gross_fen", "-100"),
        ("p2", 3): ("net_mismatch", "net_fen", "700"),
    }
    assert (settlements["feeds"], settlements["tables"]) == (
        {"pay_settlements"},
        {"dwd_pay_settlement"},
    )


def test_every_delivered_settlement_line_is_loaded_superseded_or_quarantined(
    settlements: dict[str, Any],
) -> None:
    delivered = {(d, line) for d, _, rows in SETTLEMENTS for line in range(2, len(rows) + 2)}
    loaded = {(r["_delivery_id"], r["_source_line"]) for r in settlements["rows"].values()}
    superseded = {("p1", 2), ("p2", 4)}  # by p2:2 and p2:5, both loaded
    quarantined = set(settlements["quarantine"])
    assert len(loaded) + len(superseded) + len(quarantined) == len(delivered) == 10
    assert loaded | superseded | quarantined == delivered


# --- platform orders --------------------------------------------------------------------------

# Columns: order_id, merchant_id, platform, order_time, gmv_fen, commission_fen, status,
# updated_at.
ORDERS = [
    ("o1", "2024-11-05T23:00:00", [
        ["O1", "M001", "meituan", "2024-11-05T10:00:00+08:00", "5000", "400", "paid",
         "2024-11-05T10:00:03+08:00"],  # 2: refunded the next day (o2:2)
        ["O2", "M001", "ctrip", "2024-11-05T16:30:00Z", "¥12,000", "1440", "PAID",
         "2024-11-05T16:30:05Z"],  # 3: 00:30 on Nov 6 in +08:00
        ["O3", "M002", "douyin", "2024-11-05T11:00:00+08:00", "800", "64", "paid",
         "2024-11-05T11:00:00+08:00"],  # 4: a platform outside the feed standard
        ["O4", "M002", "amap", "2024-11-05T11:05:00+08:00", "-500", "0", "paid",
         "2024-11-05T11:05:00+08:00"],  # 5: negative GMV
        ["O5", "M003", "local", "2024-11-05T12:00:00+08:00", "3000", "0", "cancelled",
         "2024-11-05T12:20:00+08:00"],  # 6: cancelled, kept
        ["O6", "M003", "tongcheng", "2024-11-05T13:00:00+08:00", "900", "90", "shipped",
         "2024-11-05T13:00:00+08:00"],  # 7: a status outside the feed standard
    ]),
    ("o2", "2024-11-06T23:00:00", [
        ["O1", "M001", "meituan", "2024-11-05T10:00:00+08:00", "5000", "400", "refunded",
         "2024-11-06T09:00:00+08:00"],  # 2: supersedes o1:2
        ["O5", "M003", "local", "2024-11-05T12:00:00+08:00", "3000", "90", "paid",
         "2024-11-05T12:00:01+08:00"],  # 3: delivered later but older: o1:6 stays
        ["O2", "M001", "ctrip", "2024-11-05T16:30:00Z", "12000", "1440", "refunded",
         "昨天"],  # 4: unreadable updated_at; o1:3 stays
    ]),
]  # fmt: skip


@pytest.fixture(scope="module")
def orders(spark: SparkSession) -> dict[str, Any]:
    table = CONTRACTS["dwd_merchant_order"]
    ods = _ods(spark, "ods_merchant_orders", ORDERS)
    rows, quarantine = build_merchant_order(normalize(ods, table), table)
    return _built(rows, quarantine, ["order_id"])


def test_orders_are_typed_as_their_contract(orders: dict[str, Any]) -> None:
    assert orders["types"] == _contract_types("dwd_merchant_order")


def test_the_latest_updated_order_wins_and_every_status_is_kept(orders: dict[str, Any]) -> None:
    got = {
        key: (
            r["platform"], r["gmv_fen"], r["commission_fen"], r["status"], r["biz_date"],
            r["_delivery_id"], r["_source_line"],
        )
        for (key,), r in orders["rows"].items()
    }  # fmt: skip
    assert got == {
        "O1": ("meituan", 5000, 400, "refunded", D5, "o2", 2),
        "O2": ("ctrip", 12000, 1440, "paid", D6, "o1", 3),  # biz_date in +08:00; ¥, comma
        "O5": ("local", 3000, 0, "cancelled", D5, "o1", 6),  # latest updated_at, not delivery
    }


def test_broken_orders_are_quarantined_with_reason_and_line(orders: dict[str, Any]) -> None:
    assert orders["quarantine"] == {
        ("o1", 4): ("bad_value", "platform", "douyin"),
        ("o1", 5): ("out_of_range", "gmv_fen", "-500"),
        ("o1", 7): ("bad_value", "status", "shipped"),
        ("o2", 4): ("bad_timestamp", "updated_at", "昨天"),
    }
    assert (orders["feeds"], orders["tables"]) == ({"merchant_orders"}, {"dwd_merchant_order"})


def test_every_delivered_order_line_is_loaded_superseded_or_quarantined(
    orders: dict[str, Any],
) -> None:
    delivered = {(d, line) for d, _, rows in ORDERS for line in range(2, len(rows) + 2)}
    loaded = {(r["_delivery_id"], r["_source_line"]) for r in orders["rows"].values()}
    superseded = {("o1", 2), ("o2", 3)}  # by o2:2 (later updated_at) and o1:6 (o2:3 is older)
    quarantined = set(orders["quarantine"])
    assert len(loaded) + len(superseded) + len(quarantined) == len(delivered) == 9
    assert loaded | superseded | quarantined == delivered
