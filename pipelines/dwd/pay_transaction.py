"""dwd_pay_transaction: one row per transaction, with where and when its amount books.

Rules of cockpit-indicators.md: a `success` or `reversed` transaction counts in txn_count and
gross; a reversed one's amount also counts as refund (it nets to zero). A refund is its own
txn_id: it never counts as a transaction; its amount is a refund booked on the ORIGINAL's
date, district, sector and channel. District and sector come from the merchant's registry
version valid at the original's txn_time. Refunds of unknown originals are quarantined.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from pipelines.cached import cached
from pipelines.dwd.rows import latest_per_key, quarantine_rows, split
from pipelines.normalize import reject
from warehouse_layers.contract import TableContract

# A transaction's date (`biz_date`) is that of its time; its row books on that date, a
# refund's on its original's.
BOOKS_ON = "txn_time"


def build_pay_transaction(
    normalized: DataFrame, merchants: DataFrame, table: TableContract
) -> tuple[DataFrame, DataFrame]:
    """(DWD rows, quarantine rows) from normalized transactions and the SCD2 merchant dim."""
    normalized = normalized.withColumn(
        "_reject",
        F.coalesce(
            F.col("_reject"),
            F.when(
                (F.col("status") == "refund") & F.col("refund_of").isNull(),
                reject("missing_refund_of", "refund_of", F.lit(None)),
            ),
        ),
    )
    accepted, rejected = split(normalized)
    # Cached: facts and every kind of reject below branch off these two (released when the
    # caller's `releasing()` block ends).
    latest = cached(
        latest_per_key(accepted, ["txn_id"]).withColumn("biz_date", F.to_date(BOOKS_ON))
    )

    originals = latest.where(F.col("status") != "refund")
    refunds = latest.where(F.col("status") == "refund")
    linked = refunds.join(
        originals.select(
            F.col("txn_id").alias("_o_id"),
            F.col("merchant_id").alias("_o_merchant"),
            F.col("txn_time").alias("_o_time"),
            F.col("channel").alias("_o_channel"),
            F.col("amount_fen").alias("_o_amount"),
            F.col("biz_date").alias("_o_date"),
        ),
        F.col("refund_of") == F.col("_o_id"),
        "left",
    )
    # Refunds of one original may not add up to more than it: later ones beyond it are rejected.
    so_far = (
        Window.partitionBy("refund_of")
        .orderBy("txn_time", "txn_id")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    linked = linked.withColumn("_refunded", F.sum("amount_fen").over(so_far)).withColumn(
        "_reject",
        F.when(
            F.col("_o_id").isNull(), reject("unknown_original", "refund_of", F.col("refund_of"))
        ).when(
            F.col("_refunded") > F.col("_o_amount"),
            reject("refund_exceeds_original", "amount_fen", F.col("amount_fen")),
        ),
    )
    events = originals.select(
        "*",
        F.col("merchant_id").alias("_ctx_merchant"),
        F.col("txn_time").alias("_ctx_time"),
        F.col("biz_date").alias("booked_date"),
        F.col("channel").alias("booked_channel"),
    ).unionByName(
        linked.where(F.col("_reject").isNull()).select(
            *originals.columns,
            F.col("_o_merchant").alias("_ctx_merchant"),
            F.col("_o_time").alias("_ctx_time"),
            F.col("_o_date").alias("booked_date"),
            F.col("_o_channel").alias("booked_channel"),
        )
    )
    dim = merchants.select(
        F.col("merchant_id").alias("_m_id"), "district_code", "sector", "valid_from", "valid_to"
    )
    enriched = cached(
        events.join(
            dim,
            (F.col("_ctx_merchant") == F.col("_m_id"))
            & (F.col("valid_from") <= F.col("_ctx_time"))
            & (F.col("_ctx_time") < F.col("valid_to")),
            "left",
        )
    )
    unknown = enriched.where(F.col("_m_id").isNull()).withColumn(
        "_reject", reject("unknown_merchant", "merchant_id", F.col("_ctx_merchant"))
    )
    facts = enriched.where(F.col("_m_id").isNotNull()).select(
        "*",
        F.when(F.col("status") != "refund", F.col("amount_fen")).otherwise(0).alias("gross_fen"),
        F.when(F.col("status") != "success", F.col("amount_fen")).otherwise(0).alias("refund_fen"),
        (F.col("status") != "refund").alias("counts_as_txn"),
    )
    all_rejects = rejected.unionByName(
        linked.where(F.col("_reject").isNotNull()), allowMissingColumns=True
    ).unionByName(unknown, allowMissingColumns=True)
    return facts, quarantine_rows(all_rejects, feed="pay_transactions", table=table)
