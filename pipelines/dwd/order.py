"""dwd_merchant_order: one row per platform order, in its latest state.

A platform re-delivers an order when it changes (paid, then refunded or cancelled), so the
version with the latest `updated_at` wins (ties: the latest delivered line). Every status is
kept: only `paid` orders count as platform GMV downstream, and the others are the evidence of
why an order stopped counting. Rows breaking a rule go to `dwd_quarantine`; as for every feed,
checks come before deduplication, so a broken re-send does not erase a good earlier version.

`biz_date` is the calendar date of `order_time` in the session time zone, +08:00
(settings.timezone), as for payments and fuel.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from pipelines.dwd.rows import latest_per_key, quarantine_rows, split
from pipelines.tables import conform
from warehouse_layers.contract import TableContract

FEED = "merchant_orders"
KEY = ["order_id"]
BOOKS_ON = "order_time"  # its date (`biz_date`) is the partition an order's row books on


def build_merchant_order(
    normalized: DataFrame, table: TableContract
) -> tuple[DataFrame, DataFrame]:
    """(dwd_merchant_order rows, quarantine rows) from normalized merchant_orders rows."""
    accepted, rejected = split(normalized)
    rows = latest_per_key(accepted, KEY).withColumn("biz_date", F.to_date(BOOKS_ON))
    return conform(rows, table), quarantine_rows(rejected, feed=FEED, table=table)
