"""dwd_merchant: the merchant registry as a slowly changing dimension (SCD2).

Each accepted registry version opens a validity interval at its `updated_at` and closes the
previous one; the first version is valid from the beginning of time, so a transaction that
predates the registry's first delivery still finds its merchant. A change of the uscc a
merchant binds to rebinds its orders from then on (`binding_changes`, `rebound_days`): the
enterprise months of those orders are recomputed.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
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


# What binds a merchant's amounts to an enterprise: which uscc holds at which time.
BINDING = ["merchant_id", "valid_from", "valid_to", "uscc"]


def binding_changes(before: pa.Table, after: pa.Table) -> dict[str, dt.date]:
    """Per merchant whose uscc at some time differs between two states of dwd_merchant (its
    `BINDING` columns), the day from which it may differ: the earliest boundary of either
    state's versions where the uscc in force differs (no version binds to no uscc, like a
    null uscc). A new merchant with a uscc differs from its first version's start, the
    beginning of time; a new version of a district alone changes nothing.

    The day is the boundary's date as stored (UTC): never later than its local date, so the
    orders from it include every order the change rebinds."""
    # Most merchants keep every version: only those with a version not in both are compared.
    keyed = [
        t.set_column(t.schema.get_field_index("uscc"), "uscc", pc.fill_null(t["uscc"], ""))
        for t in (before, after)
    ]
    changed = {
        merchant
        for a, b in (keyed, keyed[::-1])
        for merchant in a.join(b, BINDING, join_type="left anti")["merchant_id"].to_pylist()
    }
    old, new = (_versions(t, changed) for t in (before, after))
    since: dict[str, dt.date] = {}
    for merchant in old.keys() | new.keys():
        was, now = old.get(merchant, []), new.get(merchant, [])
        if was == now:
            continue
        for time in sorted({t for v in was + now for t in v[:2]}):
            if _uscc_at(was, time) != _uscc_at(now, time):
                since[merchant] = time.date()
                break
    return since


def _versions(
    state: pa.Table, merchants: set[str]
) -> dict[str, list[tuple[dt.datetime, dt.datetime, str | None]]]:
    """The versions of `merchants` in a state, each merchant's in time order."""
    state = state.filter(
        pc.is_in(state["merchant_id"], pa.array(sorted(merchants), state["merchant_id"].type))
    )
    versions: dict[str, list[tuple[dt.datetime, dt.datetime, str | None]]] = {}
    for merchant, valid_from, valid_to, uscc in zip(
        *(state[c].to_pylist() for c in BINDING), strict=True
    ):
        versions.setdefault(merchant, []).append((valid_from, valid_to, uscc))
    return {m: sorted(v) for m, v in versions.items()}


def _uscc_at(
    versions: list[tuple[dt.datetime, dt.datetime, str | None]], time: dt.datetime
) -> str | None:
    return next((uscc for start, end, uscc in versions if start <= time < end), None)


def rebound_days(since: dict[str, dt.date], orders: DataFrame) -> set[dt.date]:
    """The days (`biz_date`) of the orders whose merchant's binding changed at or before
    them: the days the enterprise months of those orders must be recomputed for."""
    if not since:
        return set()
    spark = orders.sparkSession
    changed = spark.createDataFrame(list(since.items()), "merchant_id string, since date")
    rows = (
        orders.where(F.col("biz_date") >= min(since.values()))
        .join(F.broadcast(changed), "merchant_id")
        .where(F.col("biz_date") >= F.col("since"))
        .select("biz_date")
        .distinct()
        .collect()
    )
    return {row.biz_date for row in rows}
