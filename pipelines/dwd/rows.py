"""Shared DWD steps: split good rows from rejects, keep the latest version per key, quarantine."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from warehouse_layers.contract import TableContract


def split(normalized: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(rows that satisfy every rule, rows with a `_reject`)."""
    return normalized.where(F.col("_reject").isNull()), normalized.where(
        F.col("_reject").isNotNull()
    )


def latest_per_key(df: DataFrame, key: list[str]) -> DataFrame:
    """One row per key: the latest `updated_at` wins; ties go to the latest delivered line.

    Ties are broken by ingestion time, delivery id and line so the choice is deterministic.
    """
    order = Window.partitionBy(*key).orderBy(
        F.col("updated_at").desc(),
        F.col("_ingested_at").desc(),
        F.col("_delivery_id").desc(),
        F.col("_source_line").desc(),
    )
    return df.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


def latest_delivered_per_key(df: DataFrame, key: list[str]) -> DataFrame:
    """One row per key for feeds without `updated_at`: the latest delivered line wins.

    A producer re-sends a row to correct or repeat it, so the line ingested last is its current
    version; delivery id and line break ties within one ingestion so the choice is deterministic.
    """
    order = Window.partitionBy(*key).orderBy(
        F.col("_ingested_at").desc(),
        F.col("_delivery_id").desc(),
        F.col("_source_line").desc(),
    )
    return df.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


def quarantine_rows(rejected: DataFrame, *, feed: str, table: TableContract) -> DataFrame:
    """Rows of `dwd_quarantine` for rejected rows (which carry `_reject` and the ODS lineage)."""
    return rejected.select(
        F.lit(feed).alias("feed"),
        F.lit(table.name).alias("table_name"),
        F.col("_delivery_id").alias("delivery_id"),
        F.col("_business_date").alias("business_date"),
        F.col("_source_file").alias("source_file"),
        F.col("_source_line").alias("source_line"),
        F.col("_reject.code").alias("reason_code"),
        F.col("_reject.column").alias("column_name"),
        F.col("_reject.value").alias("bad_value"),
        F.col("_raw").alias("raw_record"),
        F.current_timestamp().alias("quarantined_at"),
    )
