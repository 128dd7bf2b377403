"""Small tables written through delta-rs: a dimension rewritten only when its rows change, and a
feed's quarantine replaced without touching the other feeds'."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from citylake.settings import Settings
from pipelines import tables

pytestmark = pytest.mark.spark

MCC = {
    "mcc": ["5411", "5812"],
    "description": ["Grocery Stores", "Eating Places"],
    "group_name": ["Retail Outlet Services", "Retail Outlet Services"],
    "group_range": ["5000-5599", "5000-5599"],
}


def test_a_dimension_is_rewritten_only_when_its_rows_change(spark, lake: Settings) -> None:
    table = tables.contract("dwd_dim_mcc", lake)
    assert tables.replace_small(tables.from_columns(spark, MCC, table), table, lake)
    version = tables.version(spark, table, lake)

    shuffled = {name: values[::-1] for name, values in MCC.items()}  # same rows, other order
    assert not tables.replace_small(tables.from_columns(spark, shuffled, table), table, lake)
    assert tables.version(spark, table, lake) == version

    renamed = MCC | {"description": ["Grocery Stores, Supermarkets", "Eating Places"]}
    assert tables.replace_small(tables.from_columns(spark, renamed, table), table, lake)
    assert tables.version(spark, table, lake) == version + 1
    rows = tables.read_native(table, settings=lake).sort_by("mcc")
    assert rows["description"].to_pylist() == renamed["description"]


def _quarantined(feed: str, line: int) -> dict:
    return {
        "feed": feed,
        "table_name": "dwd_x",
        "delivery_id": f"{feed}-d1",
        "business_date": dt.date(2024, 11, 5),
        "source_file": "f.csv",
        "source_line": line,
        "reason_code": "bad_amount",
        "column_name": "amount",
        "bad_value": "12,3,4",
        "raw_record": "{}",
        "quarantined_at": dt.datetime(2024, 11, 6, tzinfo=dt.UTC),
    }


def test_a_feeds_quarantine_is_replaced_and_the_others_kept(spark, lake: Settings) -> None:
    table = tables.contract("dwd_quarantine", lake)
    rows = [_quarantined("orders", 2), _quarantined("orders", 3), _quarantined("fuel_sales", 7)]
    tables.write_native(pa.Table.from_pylist(rows), table, mode="append", settings=lake)

    def held() -> list[tuple[str, int]]:
        read = tables.read(spark, table, settings=lake)  # Spark sees delta-rs's commits
        return sorted((r.feed, r.source_line) for r in read.collect())

    now = pa.Table.from_pylist([_quarantined("orders", 3)])
    tables.write_native(now, table, mode="overwrite", where="feed = 'orders'", settings=lake)
    assert held() == [("fuel_sales", 7), ("orders", 3)]

    nothing = pa.Table.from_pylist([], schema=tables.arrow_schema(table))
    tables.write_native(nothing, table, mode="overwrite", where="feed = 'orders'", settings=lake)
    assert held() == [("fuel_sales", 7)]


def test_rows_are_counted_without_spark(spark, lake: Settings) -> None:
    table = tables.contract("dwd_quarantine", lake)
    rows = [_quarantined("orders", 2), _quarantined("orders", 3), _quarantined("fuel_sales", 7)]
    tables.write_native(pa.Table.from_pylist(rows), table, mode="append", settings=lake)
    assert tables.count_rows(table, settings=lake) == 3
    assert tables.count_rows(table, pc.field("feed") == "orders", settings=lake) == 2  # partition
    assert tables.count_rows(table, pc.field("source_line") >= 3, settings=lake) == 2  # data
    assert tables.count_rows(table, pc.field("feed") == "tax", settings=lake) == 0
    feeds = tables.read_native(table, settings=lake, columns=["feed"])
    assert feeds.column_names == ["feed"]
    assert sorted(feeds["feed"].to_pylist()) == ["fuel_sales", "orders", "orders"]


def test_a_current_read_follows_the_tables_version(spark, lake: Settings) -> None:
    """The rows read once per version (the delivery log during a build) are read again as
    soon as a commit moves it, and never served from another version."""
    table = tables.contract("dwd_quarantine", lake)
    tables.write_native(
        pa.Table.from_pylist([_quarantined("orders", 2)]), table, mode="append", settings=lake
    )
    first = tables.read_native_current(table, settings=lake)
    assert first.num_rows == 1
    assert tables.read_native_current(table, settings=lake) is first  # same version: kept
    tables.write_native(
        pa.Table.from_pylist([_quarantined("fuel_sales", 7)]), table, mode="append", settings=lake
    )
    now = tables.read_native_current(table, pc.field("feed") == "fuel_sales", settings=lake)
    assert now["source_line"].to_pylist() == [7]
    assert tables.read_native_current(table, settings=lake).num_rows == 2


def test_an_append_refuses_a_predicate(lake: Settings) -> None:
    table = tables.contract("dwd_quarantine", lake)
    rows = pa.Table.from_pylist([_quarantined("orders", 2)])
    with pytest.raises(ValueError, match="needs mode='overwrite'"):
        tables.write_native(rows, table, mode="append", where="feed = 'orders'", settings=lake)
