"""Fuel DWD: the station dimension (SCD2) and the three facts the fuel inventory check reads.

`ads_fuel_inventory_check` (cockpit-indicators.md) balances, per station, product and day, the
tanks' last gauge readings against the liters sold and delivered, so every accepted sale,
delivery and reading must be counted exactly once and a rejected one not at all:

- rows breaking a contract rule, and rows of a station the dimension does not know
  (`unknown_station`), go to `dwd_quarantine` with the reason and the delivered line;
- the remaining rows are deduplicated by key. Sales, deliveries and readings carry no
  `updated_at`, so the latest delivered line wins (ingestion time, then delivery id and line);
- a sale whose amount disagrees with liters × unit price by more than 1 fen is kept and marked
  `amount_mismatch`: the pump meter's liters are what the balance needs, and dropping the row
  would fake a gap (fuel leaving the tank without a recorded sale) and flag an honest station.

`biz_date` is the calendar date in the session time zone, +08:00 (settings.timezone), as for
payments. Nothing is cached here: a caller writing both the facts and the quarantine should
cache the normalized inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from pipelines.dwd.merchant import BEGINNING, END_OF_TIME
from pipelines.dwd.rows import latest_delivered_per_key, latest_per_key, quarantine_rows, split
from pipelines.normalize import reject
from warehouse_layers.contract import TableContract

# ODS table -> the DWD table built from it (and its feed, for dwd_quarantine.feed).
FUEL_TABLES = {
    "ods_fuel_stations": "dwd_fuel_station",
    "ods_fuel_sales": "dwd_fuel_sale",
    "ods_fuel_deliveries": "dwd_fuel_delivery",
    "ods_fuel_tank_readings": "dwd_tank_reading",
}
FUEL_FEEDS = ("fuel_stations", "fuel_sales", "fuel_deliveries", "fuel_tank_readings")
# Each fact's time, whose date (`biz_date`) is the partition its row books on.
BOOKS_ON = {
    "dwd_fuel_sale": "sale_time",
    "dwd_fuel_delivery": "delivery_time",
    "dwd_tank_reading": "reading_time",
}
# The amount may differ from liters × unit price by rounding to fen, not more.
AMOUNT_TOLERANCE_YUAN = 0.01


@dataclass(frozen=True)
class FuelDwd:
    """The fuel facts in their DWD contracts' columns, and the rows they quarantined."""

    sales: DataFrame  # dwd_fuel_sale
    deliveries: DataFrame  # dwd_fuel_delivery
    readings: DataFrame  # dwd_tank_reading
    quarantine: DataFrame  # dwd_quarantine rows of fuel_sales, fuel_deliveries, readings


def build_fuel_station(normalized: DataFrame, table: TableContract) -> tuple[DataFrame, DataFrame]:
    """(dimension rows, quarantine rows) from normalized fuel_stations rows.

    As dwd_merchant: each accepted version opens a validity interval at its `updated_at` and
    closes the previous one; the first is valid from the beginning of time, so a sale older
    than the registry's first delivery still finds its station.
    """
    accepted, rejected = split(normalized)
    versions = latest_per_key(accepted, ["station_id", "updated_at"])
    history = Window.partitionBy("station_id").orderBy("updated_at")
    dim = (
        versions.withColumn("_next", F.lead("updated_at").over(history))
        .withColumn(
            "valid_from",
            F.when(F.row_number().over(history) == 1, F.to_timestamp(F.lit(BEGINNING))).otherwise(
                F.col("updated_at")
            ),
        )
        .withColumn("valid_to", F.coalesce(F.col("_next"), F.to_timestamp(F.lit(END_OF_TIME))))
        .withColumn("is_current", F.col("_next").isNull())
        .drop("_next")
    )
    return dim, quarantine_rows(rejected, feed="fuel_stations", table=table)


def build_fuel_sale(
    normalized: DataFrame, stations: DataFrame, table: TableContract
) -> tuple[DataFrame, DataFrame]:
    """(dwd_fuel_sale rows, quarantine rows) from normalized fuel_sales rows."""
    rows, rejects = _fact(normalized, stations, table, "fuel_sales", ["sale_id"])
    mismatch = F.abs(F.col("amount_yuan") - F.col("liters") * F.col("unit_price_yuan"))
    return rows.withColumn("amount_mismatch", mismatch > AMOUNT_TOLERANCE_YUAN), rejects


def build_fuel_delivery(
    normalized: DataFrame, stations: DataFrame, table: TableContract
) -> tuple[DataFrame, DataFrame]:
    """(dwd_fuel_delivery rows, quarantine rows) from normalized fuel_deliveries rows."""
    return _fact(normalized, stations, table, "fuel_deliveries", ["delivery_id"])


def build_tank_reading(
    normalized: DataFrame, stations: DataFrame, table: TableContract
) -> tuple[DataFrame, DataFrame]:
    """(dwd_tank_reading rows, quarantine rows) from normalized fuel_tank_readings rows."""
    key = ["station_id", "tank_id", "reading_time"]
    return _fact(normalized, stations, table, "fuel_tank_readings", key)


def build_fuel_facts(
    sales: DataFrame,
    deliveries: DataFrame,
    readings: DataFrame,
    stations: DataFrame,
    contracts: Mapping[str, TableContract],
) -> FuelDwd:
    """The three fuel facts from their normalized ODS rows and the station dimension.

    `contracts` maps table names to contracts (at least dwd_fuel_sale, dwd_fuel_delivery and
    dwd_tank_reading); `stations` is dwd_fuel_station (any version makes a station known).
    """
    sale_rows, sale_rejects = build_fuel_sale(sales, stations, contracts["dwd_fuel_sale"])
    delivery_rows, delivery_rejects = build_fuel_delivery(
        deliveries, stations, contracts["dwd_fuel_delivery"]
    )
    reading_rows, reading_rejects = build_tank_reading(
        readings, stations, contracts["dwd_tank_reading"]
    )
    return FuelDwd(
        sales=sale_rows,
        deliveries=delivery_rows,
        readings=reading_rows,
        quarantine=sale_rejects.unionByName(delivery_rejects).unionByName(reading_rejects),
    )


def _fact(
    normalized: DataFrame,
    stations: DataFrame,
    table: TableContract,
    feed: str,
    key: list[str],
) -> tuple[DataFrame, DataFrame]:
    """(deduplicated rows with biz_date, quarantine rows) of one fuel fact feed."""
    known = stations.select("station_id").distinct().withColumn("_known", F.lit(True))
    # The station check comes before deduplication, like the rule checks: the latest *valid*
    # delivered version of a key wins, a broken re-send does not erase a good earlier one.
    checked = normalized.join(F.broadcast(known), "station_id", "left").withColumn(
        "_reject",
        F.coalesce(
            F.col("_reject"),
            F.when(
                F.col("_known").isNull(),
                reject("unknown_station", "station_id", F.col("station_id")),
            ),
        ),
    )
    accepted, rejected = split(checked.drop("_known"))
    rows = latest_delivered_per_key(accepted, key).withColumn(
        "biz_date", F.to_date(BOOKS_ON[table.name])
    )
    return rows, quarantine_rows(rejected, feed=feed, table=table)
