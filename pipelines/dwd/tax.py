"""dwd_tax_monthly and dwd_social_insurance: one row per (uscc, period), the latest delivery wins.

A department corrects a month by delivering the same (uscc, period) again (更正申报); the
version with the latest `updated_at` supersedes. Both tables are partitioned by period, so a
build rewrites only the months that the deliveries of its range touch: `delivered_periods`
names them, and `build_*` gives the rows of every period (filter them to those months and
replace exactly those partitions).
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
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


def delivered_periods(normalized: DataFrame, start: dt.date, end: dt.date) -> list[str]:
    """The periods (YYYYMM) that deliveries with business dates in [start, end] carry.

    These are exactly the months whose rows a build of that range may change: a superseding
    delivery for 202405 delivered on 2024-07-03 rebuilds 202405 and nothing else. Rows whose
    period is unreadable change no month (they are quarantined). One Spark action.
    """
    rows = (
        normalized.where(F.col("_business_date").between(F.lit(start), F.lit(end)))
        .where(F.col("period").isNotNull())
        .select("period")
        .distinct()
        .collect()
    )
    return sorted(r.period for r in rows)
