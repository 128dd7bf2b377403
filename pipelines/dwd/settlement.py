"""dwd_pay_settlement: one row per (merchant_id, settle_date), what the merchant was paid out.

`ads_fund_backflow_monthly` (cockpit-indicators.md) sums `net_fen`, and the part settled into a
bank branch inside the city (`settle_bank_local = 'Y'`), per month and district. So:

- a row breaking a contract rule, or whose `net_fen` is not `gross_fen − fee_fen`
  (`net_mismatch`: which of the three amounts is wrong cannot be told, so none is trusted), goes
  to `dwd_quarantine` with the reason and its delivered position;
- the remaining rows are deduplicated by key. The feed carries no `updated_at` (the source
  database keeps it as its pull watermark only), and a pull delivers a changed row again in a
  later page, so the latest delivered line wins: ingestion time, then delivery id and line.
  As for every feed, checks come first: a broken re-send does not erase a good earlier version.

The table stays a fact of the feed: the merchant's district is joined where the backflow is
computed (from dwd_merchant).
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from pipelines.dwd.rows import latest_delivered_per_key, quarantine_rows, split
from pipelines.normalize import reject
from pipelines.tables import conform
from warehouse_layers.contract import TableContract

FEED = "pay_settlements"
KEY = ["merchant_id", "settle_date"]


def build_settlement(normalized: DataFrame, table: TableContract) -> tuple[DataFrame, DataFrame]:
    """(dwd_pay_settlement rows, quarantine rows) from normalized pay_settlements rows."""
    # The amounts are typed (or null) on every row; only rows that passed their rules are
    # reconciled, so a row keeps the first reason it broke.
    mismatch = F.col("net_fen") != F.col("gross_fen") - F.col("fee_fen")
    checked = normalized.withColumn(
        "_reject",
        F.coalesce(
            F.col("_reject"),
            F.when(mismatch, reject("net_mismatch", "net_fen", F.col("net_fen"))),
        ),
    )
    accepted, rejected = split(checked)
    rows = latest_delivered_per_key(accepted, KEY)
    return conform(rows, table), quarantine_rows(rejected, feed=FEED, table=table)
