"""dwd_enterprise: the enterprise registry (市场监管 法人库) as a slowly changing dimension (SCD2).

Like dwd_merchant: each accepted registry version opens a validity interval at its
`updated_at` and closes the previous one; the first version is valid from the beginning of
time. A re-delivered version that changes nothing opens no new interval. A closed (注销/吊销)
enterprise keeps all its versions; `closed_date` is the day its closing version took effect,
from which it leaves the active counts, and `is_active` is false from then on.

The legal representative never reaches this table in clear: normalize() keeps only the keyed
hash and the masked form its contract declares (`pii`).
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from pipelines.dwd.dimensions import industry_section
from pipelines.dwd.merchant import BEGINNING, END_OF_TIME
from pipelines.dwd.rows import latest_per_key, quarantine_rows, split
from pipelines.tables import conform
from warehouse_layers.contract import TableContract

ACTIVE_STATUSES = ("存续", "在业")
CLOSED_STATUSES = ("注销", "吊销")
# Everything a version says about the enterprise: a version equal to the one before in all of
# these is a re-delivery, not a change.
_TRACKED = (
    "name",
    "legal_rep_id_hash",
    "legal_rep_id_masked",
    "legal_rep_name_hash",
    "legal_rep_name_masked",
    "reg_capital_wan",
    "established_date",
    "status",
    "industry_code",
    "district_code",
    "address",
    "scale",
    "above_designated_size",
)


def build_enterprise(normalized: DataFrame, table: TableContract) -> tuple[DataFrame, DataFrame]:
    """(dimension rows in `table`'s columns, quarantine rows) from normalized registry rows."""
    accepted, rejected = split(normalized)
    versions = latest_per_key(accepted, ["uscc", "updated_at"])
    history = Window.partitionBy("uscc").orderBy("updated_at")
    tracked = F.to_json(F.struct(*[F.col(c) for c in _TRACKED]))
    changes = (
        versions.withColumn("_tracked", tracked)
        .withColumn("_before", F.lag("_tracked").over(history))
        .where(F.col("_before").isNull() | (F.col("_before") != F.col("_tracked")))
    )
    closed = F.col("status").isin(*CLOSED_STATUSES)
    # Versions since the last open one form a closing streak; it closed on the streak's first.
    streak = Window.partitionBy("uscc", "_streak")
    dim = (
        changes.withColumn("_next", F.lead("updated_at").over(history))
        .withColumn("_first", F.row_number().over(history) == 1)
        .withColumn("_streak", F.sum(F.when(closed, 0).otherwise(1)).over(history))
        .withColumn(
            "closed_date",
            F.when(closed, F.to_date(F.min(F.when(closed, F.col("updated_at"))).over(streak))),
        )
        .withColumn("is_active", F.col("status").isin(*ACTIVE_STATUSES))
        .withColumn("industry_section", industry_section(F.col("industry_code")))
        .withColumn(
            "valid_from",
            F.when(F.col("_first"), F.to_timestamp(F.lit(BEGINNING))).otherwise(
                F.col("updated_at")
            ),
        )
        .withColumn("valid_to", F.coalesce(F.col("_next"), F.to_timestamp(F.lit(END_OF_TIME))))
        .withColumn("is_current", F.col("_next").isNull())
    )
    return conform(dim, table), quarantine_rows(
        rejected, feed="gov_enterprise_registry", table=table
    )
