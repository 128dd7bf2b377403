"""dwd_merchant: the merchant registry as a slowly changing dimension (SCD2).

Each accepted registry version opens a validity interval at its `updated_at` and closes the
previous one; the first version is valid from the beginning of time, so a transaction that
predates the registry's first delivery still finds its merchant.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from pipelines.dwd.rows import latest_per_key, quarantine_rows, split
from warehouse_layers.contract import TableContract

BEGINNING = "1900-01-01 00:00:00"
END_OF_TIME = "9999-12-31 00:00:00"


def build_merchant(normalized: DataFrame, table: TableContract) -> tuple[DataFrame, DataFrame]:
    """(dimension rows, quarantine rows) from normalized registry rows."""
    accepted, rejected = split(normalized)
    versions = latest_per_key(accepted, ["merchant_id", "updated_at"])
    history = Window.partitionBy("merchant_id").orderBy("updated_at")
    dim = (
        versions.withColumn("_next", F.lead("updated_at").over(history))
        .withColumn("_first", F.row_number().over(history) == 1)
        .withColumn(
            "valid_from",
            F.when(F.col("_first"), F.to_timestamp(F.lit(BEGINNING))).otherwise(
                F.col("updated_at")
            ),
        )
        .withColumn("valid_to", F.coalesce(F.col("_next"), F.to_timestamp(F.lit(END_OF_TIME))))
        .withColumn("is_current", F.col("_next").isNull())
    )
    return dim, quarantine_rows(rejected, feed="merchant_registry", table=table)
