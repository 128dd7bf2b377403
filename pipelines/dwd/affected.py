"""What the deliveries of a build affect, so a build normalizes those rows and no others.

A DWD row is a function of every delivered version of its key (the latest wins) and, for some
feeds, of related keys (a refund needs its original and the original's other refunds; a
transaction needs its merchant's registry versions). A build therefore starts from the keys
that the deliveries of its days carry, follows the relations to a fixed point on a slim
projection of ODS (lineage and keys only), and then reads the full rows of just those lines.
Its cost follows the days it builds, not the history held in ODS, and its result equals a
rebuild from all of ODS (tests/test_incremental_dwd.py holds the two side by side).

Keys live in namespaces: `txn_id` and `refund_of` are both transaction ids ("txn"), so a
refund's `refund_of` finds its original and the original's id finds its other refunds.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence

import pyspark.sql.functions as F
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame

from citylake.settings import Settings
from pipelines import tables
from pipelines.normalize import parse
from warehouse_layers.contract import TableContract

LINE = ["_delivery_id", "_source_line"]  # one ODS row: the delivery and the line in it
_BROADCAST_KEYS = 2_000_000  # beyond this many keys a shuffle join beats shipping them


def key_value(table: TableContract, columns: Sequence[str], namespace: str) -> SparkColumn:
    """The typed key of an ODS row as normalization will make it, tagged with its namespace;
    null when any part is missing (such a row joins nothing and is quarantined anyway)."""
    parts = []
    for name in columns:
        col = table.column(name)
        assert col.rule is not None and col.source is not None, f"{table.name}.{name}"
        parts.append(parse(col.rule, F.col(col.source), col).value.cast("string"))
    value = F.concat_ws("\x1f", F.lit(namespace), *parts)
    missing = functools.reduce(operator.or_, [p.isNull() for p in parts])
    return F.when(~missing, value)


def keys_of(
    rows: DataFrame, table: TableContract, keys: Mapping[tuple[str, ...], str]
) -> DataFrame:
    """The distinct tagged keys (`_key`) that ODS `rows` carry, for every key in `keys`."""
    tagged = [key_value(table, cols, ns) for cols, ns in keys.items()]
    return (
        rows.select(F.explode(F.array(*tagged)).alias("_key"))
        .where(F.col("_key").isNotNull())
        .distinct()
    )


def _semi(rows: DataFrame, keys: DataFrame, on: str | list[str], size: int) -> DataFrame:
    return rows.join(F.broadcast(keys) if size <= _BROADCAST_KEYS else keys, on, "left_semi")


def affected_rows(
    ods: DataFrame,
    delivered: DataFrame,
    table: TableContract,
    keys: Mapping[tuple[str, ...], str],
    *,
    follow: frozenset[str],
    seeds: DataFrame | None = None,
) -> DataFrame:
    """The `delivered` rows and every row of `ods` (any delivery) related to them by a key.

    `keys` maps key columns (DWD names) to their namespace. The keys of the `follow`
    namespaces relate rows, to a fixed point: those a delivered row carries, then those that
    every row found so far carries. Other namespaces are only looked up from `seeds`, once: a
    changed merchant affects its transactions, but their merchants affect nothing further.
    """
    tagged = [key_value(table, cols, ns) for cols, ns in keys.items()]
    slim = (
        ods.select(*LINE, F.explode(F.array(*tagged)).alias("_key"))
        .where(F.col("_key").isNotNull())
        .cache()
    )
    in_follow = F.split("_key", "\x1f")[0].isin(sorted(follow))
    found = keys_of(delivered, table, keys).where(in_follow)
    if seeds is not None:
        found = found.unionByName(seeds.select("_key"))
    found = found.distinct().cache()
    size = found.count()
    while True:
        lines = _semi(slim, found, "_key", size).select(*LINE).distinct().cache()
        count = lines.count()
        more = (
            _semi(slim, lines, LINE, count)
            .where(in_follow)
            .select("_key")
            .unionByName(found)
            .distinct()
            .cache()
        )
        if (grown := more.count()) == size:
            break
        found, size = more, grown
    return _semi(ods, lines, LINE, count).unionByName(delivered).dropDuplicates(LINE)


def replace_keys(
    facts: DataFrame, affected: DataFrame, table: TableContract, settings: Settings
) -> list:
    """Put `facts` in place of the DWD rows of every key among the `affected` (normalized)
    rows, in one commit.

    A key whose row moved to another day, or is now quarantined, leaves its old partition too.
    Rewrites exactly the partitions that old or new rows touch and returns their values (sorted).
    """
    key, column = list(table.primary_key), table.partition_by[0]
    stale = affected.dropna(subset=key).select(*key).distinct()
    current = tables.read(facts.sparkSession, table, settings=settings)
    facts = tables.conform(facts, table)
    parts = current.join(stale, key, "left_semi").select(column).unionByName(facts.select(column))
    touched = sorted(r[0] for r in parts.distinct().collect() if r[0] is not None)
    if touched:
        where = tables.in_list(column, touched)
        kept = current.where(where).join(stale, key, "left_anti")
        tables.replace(kept.unionByName(facts.where(where)), table, where=where, settings=settings)
    return touched


def replace_quarantine(
    rejects: DataFrame, affected: DataFrame, feed: str, settings: Settings
) -> None:
    """The feed's quarantine with the rows of the `affected` ODS lines replaced by `rejects`
    (a line that is good now leaves it), in one commit."""
    table = tables.contract("dwd_quarantine", settings)
    where = f"feed = '{feed}'"
    lines = affected.select(
        F.col("_delivery_id").alias("delivery_id"), F.col("_source_line").alias("source_line")
    )
    current = tables.read(rejects.sparkSession, table, settings=settings).where(where)
    kept = current.join(lines, ["delivery_id", "source_line"], "left_anti")
    tables.replace(
        kept.unionByName(tables.conform(rejects, table)), table, where=where, settings=settings
    )
