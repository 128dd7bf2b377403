"""dwd_tax_monthly and dwd_social_insurance: one row per (uscc, period), the latest delivery wins.

A department corrects a month by delivering the same (uscc, period) again (更正申报); the
version with the latest `updated_at` supersedes. Both tables are partitioned by period, so a
build rewrites only the months that the deliveries of its range touch (pipelines/dwd/affected.py).
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from pipelines.dwd.rows import latest_per_key, quarantine_rows, split
from pipelines.tables import conform
from warehouse_layers.contract import TableContract

KEY = ["uscc", "period"]


def _latest_per_month(
    normalized: DataFrame, table: TableContract, feed: str
) -> tuple[DataFrame, DataFrame]:
    accepted, rejected = split(normalized)
    facts = latest_per_key(accepted, KEY)
    return conform(facts, table), quarantine_rows(rejected, feed=feed, table=table)


def build_tax_monthly(normalized: DataFrame, table: TableContract) -> tuple[DataFrame, DataFrame]:
    """(dwd_tax_monthly rows, quarantine rows) from normalized gov_tax_monthly rows."""
    return _latest_per_month(normalized, table, "gov_tax_monthly")


def build_social_insurance(
    normalized: DataFrame, table: TableContract
) -> tuple[DataFrame, DataFrame]:
    """(dwd_social_insurance rows, quarantine rows) from normalized gov_social_insurance rows."""
    return _latest_per_month(normalized, table, "gov_social_insurance")
