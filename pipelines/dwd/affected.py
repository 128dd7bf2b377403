"""What the deliveries of a build affect, so a build normalizes those rows and no others.

A DWD row is a function of every delivered version of its key (the latest wins) and, for some
feeds, of related keys (a refund needs its original and the original's other refunds; a
transaction needs its merchant's registry versions). A build therefore starts from the keys
that the deliveries of its days carry, follows the relations to a fixed point on the index of
the keys each delivered line carries (pipelines/dwd/line_keys.py: a delivery's keys are parsed
once, not on every build), and then reads the full rows of just those lines, from the business
dates they were delivered on. Its result equals a rebuild from all of ODS
(tests/test_incremental_dwd.py holds the two side by side).

Keys live in namespaces: `txn_id` and `refund_of` are both transaction ids ("txn"), so a
refund's `refund_of` finds its original and the original's id finds its other refunds.

A dimension version delivered in the build's days (a merchant's registry line) seeds the lines
of its key from the day the version holds on: a transaction is booked with the version valid at
its time, so a merchant that moves district today changes its transactions from today, not the
year it has traded before. Only a key's first version, which holds from the beginning of time,
seeds every line of its key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import reduce

import pyarrow as pa
import pyarrow.compute as pc
import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from citylake.settings import Settings
from pipelines import tables
from pipelines.cached import cached
from pipelines.dwd.line_keys import (
    INDEX,
    LINE,
    key_hash,
    key_value,
    line_keys,
    rules_fingerprint,
)
from warehouse_layers.contract import TableContract

_BROADCAST_KEYS = 2_000_000  # beyond this many keys a shuffle join beats shipping them
# A feed's index up to this many rows is probed on the driver when one pass settles the probe
# (`_settled_on_driver`): a small feed's probe by Spark cost 14 jobs, 1.1-2.7 s warm, for a
# handful of filings. A bigger index (a busy feed, a long history) is probed by Spark.
DRIVER_INDEX_ROWS = 4_000_000
# Rows of the keys a fact write replaces, old and new, up to which the driver diffs them and
# delta-rs commits the changes: a city-day of scale 1's busiest feed (~600 k transactions).
# More (a backfill's range) go by Spark's own writer, which streams from the tasks: three days
# of transactions and fuel sales through a 4 GB driver ran out of heap.
DRIVER_ROWS = 1_000_000
QUARANTINE_LINE = ["delivery_id", "source_line"]  # a delivered line, within its feed


def versions_since(
    delivered: DataFrame, normalized: DataFrame, table: TableContract, key: str, namespace: str
) -> DataFrame:
    """Seeds of `affected_rows` from the ODS lines `delivered` of an SCD2 dimension
    (`table`, its versions opened at `updated_at`) whose every normalized line is `normalized`:
    each accepted line's tagged key (`_key`) and the first day the version it brings holds
    (`_since`): its `updated_at` date, or null (every day) for the key's first version, which
    holds from the beginning of time (pipelines/dwd/merchant.py). A version closes the one
    before it at its own time, so nothing before that day changes. A rejected line makes no
    version and seeds nothing."""
    accepted = normalized.where(F.col("_reject").isNull())
    first = accepted.groupBy(key).agg(F.min("updated_at").alias("_first"))
    versions = accepted.join(first, key).select(
        *LINE,
        F.when(F.col("updated_at") > F.col("_first"), F.to_date("updated_at")).alias("_since"),
    )
    lines = delivered.select(*LINE, key_value(table, (key,), namespace).alias("_key"))
    return lines.where(F.col("_key").isNotNull()).join(versions, LINE).select("_key", "_since")


def _delivered_within(feed: str, first: dt.date, last: dt.date, settings: Settings) -> bool:
    """Whether every committed delivery of `feed` (the delivery log, read without Spark; the
    build's ODS rows are those of its deliveries) is of a business date in [first, last]."""
    log = tables.read_native_current(
        tables.contract("ods_delivery_log", settings), pc.field("feed") == feed, settings
    )
    dates = pc.min_max(log["business_date"])
    return log.num_rows == 0 or (first <= dates["min"].as_py() and dates["max"].as_py() <= last)


def _broadcast(keys: DataFrame, size: int) -> DataFrame:
    """`keys` shipped to every task when `size` (about their count) is few enough."""
    return F.broadcast(keys) if size <= _BROADCAST_KEYS else keys


def affected_rows(
    ods: DataFrame,
    feed: str,
    table: TableContract,
    keys: Mapping[tuple[str, ...], str],
    *,
    days: tuple[dt.date, dt.date],
    follow: frozenset[str],
    seeds: DataFrame | None = None,
    at: str | None = None,
    settings: Settings,
) -> DataFrame:
    """The rows that deliveries of the business `days` [first, last] carry, and every row of
    `ods` (any delivery) related to them by a key.

    `keys` maps key columns (DWD names) to their namespace. The keys of the `follow`
    namespaces relate rows, to a fixed point: those a delivered row carries, then those that
    every row found so far carries. Other namespaces are only looked up from `seeds`
    (`_key`, `_since`: `versions_since`), once: a changed merchant affects its
    transactions, but their merchants affect nothing further. A seed finds the lines of its key
    whose date of the DWD time `at` (the time a fact joins the dimension's history at) is
    `_since` or later; every line of its key when either is null.
    The keys come from the feed's line index (pipelines/dwd/line_keys.py), and only the
    business dates of the lines found are read from ODS. When every delivery of the feed is of
    the range (a first backfill), every row is, and `ods` is returned without the index.
    """
    first, last = days
    if _delivered_within(feed, first, last, settings):
        # Every row is delivered in the range (a first backfill), so every row is affected: the
        # passes would only find them all. Over 30 days at scale 1 they ran a 4 GB driver out
        # of heap (21 M lines, each with its keys, cached and deduplicated).
        return ods
    # Not cached: scanned once a pass, and the first read is pruned to the range's deliveries.
    index = line_keys(ods, feed, table, keys, settings, at)
    # A line carries one key of each entry of `keys`: with one followed entry and no seeds, the
    # lines found carry no key but the one they were found by, so the first pass is the fixed
    # point and the pass that would confirm it is skipped.
    settled = seeds is None and sum(ns in follow for ns in keys.values()) == 1
    if settled:
        held = feed_index_filter(feed, table, keys, settings, at)
        if tables.count_rows(tables.contract(INDEX, settings), held, settings) <= DRIVER_INDEX_ROWS:
            off = _settled_on_driver(held, days, follow, settings)
            dates = sorted(set(off["_business_date"].to_pylist()))
            lines = ods.sparkSession.createDataFrame(off.select(LINE)) if off.num_rows else None
            return _rows_of(ods, lines, off.num_rows, dates, days)

    in_follow = F.split("_key", "\x1f")[0].isin(sorted(follow))  # on any frame's `_key`
    found = index.where(tables.date_range_predicate("_business_date", first, last))
    found = cached(found.where(in_follow).select("_key_hash").distinct())
    known = size = found.count()
    # What a pass looks up: followed keys on every line of theirs (`_since` null), and once the
    # seeds on their lines from their day on.
    wanted = found.select("_key_hash", F.lit(None).cast("date").alias("_since"))
    if seeds is not None:
        # A key delivered twice holds from its earliest version's day (every day if one is null).
        since = seeds.groupBy("_key").agg(
            F.when(F.count_if(F.col("_since").isNull()) == 0, F.min("_since")).alias("_since")
        )
        wanted = wanted.unionByName(
            since.select(key_hash(F.col("_key")).alias("_key_hash"), "_since")
        )
    # Either date null (every day; an undated line) makes the comparison null: kept.
    from_since = F.coalesce(F.col("_event_date") >= F.col("_since"), F.lit(True))
    # Keys are probed by their 64-bit hash, which scans and joins at a third of the string's
    # cost. Lines whose key only shares a hash with one looked up are found too: they and the
    # keys they carry are followed like any, so what is found stays closed under the relations
    # (a superset), and rebuilding an unaffected line leaves its rows as they were. Unless the
    # first pass settles it, each hit brings all the keys of its line (`_keys`): the keys to
    # follow next come out of the same pass, not from a second read of the index by line.
    carried = [] if settled else ["_keys"]
    probe = index.select(*LINE, "_business_date", "_event_date", "_key_hash", *carried)
    passes = []
    while True:
        hits = probe.join(_broadcast(wanted, size), "_key_hash").where(from_since)
        hits = cached(hits.select(*LINE, "_business_date", *carried))
        passes.append(hits.select(*LINE, "_business_date"))
        if settled:
            break
        more = hits.select(F.explode("_keys").alias("_key")).where(in_follow)
        more = more.select(key_hash(F.col("_key")).alias("_key_hash")).distinct()
        more = cached(more.join(_broadcast(found, known), "_key_hash", "left_anti"))
        if (size := more.count()) == 0:
            break
        found, known = cached(found.unionByName(more)), known + size
        wanted = more.select("_key_hash", F.lit(None).cast("date").alias("_since"))
    lines = cached(reduce(DataFrame.unionByName, passes).distinct())
    count = lines.count()
    dates = sorted(r[0] for r in lines.select("_business_date").distinct().collect())
    return _rows_of(ods, lines, count, dates, days)


def feed_index_filter(
    feed: str,
    table: TableContract,
    keys: Mapping[tuple[str, ...], str],
    settings: Settings,
    at: str | None = None,
) -> pc.Expression:
    """The index rows of `feed` under its current key rules, as a delta-rs filter on the
    index's partition columns (`line_keys` reads the same rows by Spark). Here, not beside
    `line_keys`: a change of that module's text re-indexes every feed."""
    rules = rules_fingerprint(table, keys, at, settings.timezone)
    return (pc.field("feed") == feed) & (pc.field("rules") == rules)


def _rows_of(
    ods: DataFrame,
    lines: DataFrame | None,
    count: int,
    dates: list[dt.date],
    days: tuple[dt.date, dt.date],
) -> DataFrame:
    """The rows of `ods` delivered in `days` and those of the `lines` found (`count` of them,
    on the business `dates`; None: no line), in one pass over the business dates of both: each
    row is kept when it is in the range or a line found (a line is in ODS once: ingestion is
    idempotent per delivery). A union with the range's rows deduplicated by line shuffled
    every row."""
    in_range = tables.date_range_predicate("_business_date", *days)
    if lines is None:
        return ods.where(in_range)
    scope = f"({in_range}) OR {tables.in_list('_business_date', dates)}" if dates else in_range
    marked = lines.select(*LINE, F.lit(True).alias("_found"))
    rows = ods.where(scope).join(_broadcast(marked, count), LINE, "left")
    return rows.where(F.col("_found") | F.expr(in_range)).drop("_found")


def _settled_on_driver(
    held: pc.Expression,
    days: tuple[dt.date, dt.date],
    follow: frozenset[str],
    settings: Settings,
) -> pa.Table:
    """The settled probe (`affected_rows`) of the index rows `held`, read by delta-rs: the
    lines off the range that carry a key of a `follow` namespace that lines of the range carry,
    as (*LINE, `_business_date`). Probed by hash like Spark's: a line met by a shared hash
    only is read and rebuilt, and stays as it was. Reads two columns of the range's rows and
    three of the others' matches, never the index whole into memory."""
    index = tables.contract(INDEX, settings)
    day = pc.field("business_date")
    in_range = (day >= pc.scalar(days[0])) & (day <= pc.scalar(days[1]))
    in_follow = reduce(
        lambda a, b: a | b,
        [pc.starts_with(pc.field("key"), f"{ns}\x1f") for ns in sorted(follow)],
    )
    delivered = tables.read_native(index, held & in_range & in_follow, settings, ["key_hash"])
    found = pc.unique(delivered["key_hash"].combine_chunks()).drop_null()
    if not len(found):
        return pa.table({"_delivery_id": [], "_source_line": [], "_business_date": []})
    hits = tables.read_native(
        index,
        held & ~in_range & pc.field("key_hash").isin(found),
        settings,
        ["delivery_id", "source_line", "business_date"],
    )
    lines = hits.group_by(hits.column_names).aggregate([])  # a line once, whatever its keys
    return pa.table(
        {
            "_delivery_id": lines["delivery_id"].cast(pa.string()),
            "_source_line": lines["source_line"].cast(pa.int64()),
            "_business_date": lines["business_date"].cast(pa.date32()),
        }
    )


def booked_partitions(affected: DataFrame, table: TableContract, books_on: str | None) -> list:
    """The partitions of `table` that rows of the `affected` (normalized) lines' keys can sit
    in, old or new: the dates of the lines' `books_on` time, or, when None, the lines' own
    partition column (a column of the key: settle_date, period).

    A row books on the date of one of its key's lines, or of a related key's (a refund on its
    original's), and every line of those keys is among the affected ones (`affected_rows`
    follows them, and ODS keeps every delivered line): so a key's old row, written from some of
    those lines by an earlier build, is on one of these days, whatever its lines say now. Every
    line counts, rejected or not (whatever passed when the old row was written, its day is
    here); one without a time never booked a row. A change of the booking rule itself needs a
    build of every day.
    """
    column = table.partition_by[0]
    if books_on is None and column not in affected.columns:
        raise ValueError(
            f"{table.name}: its lines carry no {column!r}; name the time its rows book on"
        )
    value = F.col(column) if books_on is None else F.to_date(books_on)
    return sorted(r[0] for r in affected.select(value).distinct().collect() if r[0] is not None)


def replace_keys(
    facts: DataFrame,
    affected: DataFrame,
    table: TableContract,
    settings: Settings,
    books_on: str | None = None,
) -> dict:
    """Put `facts` in place of the DWD rows of every key among the `affected` (normalized)
    rows, in one commit. The keys' old rows are read from the partitions the affected lines
    can book on (`booked_partitions`, by `books_on`), not from the whole table.

    A key whose row moved to another day, or is now quarantined, leaves its old partition too.
    Returns the partitions that old or new rows of those keys touch (in order), each with how
    many of the `facts` it holds now: the partitions are what the gates check and the models
    restate, whether or not a row there changed, so a rerun after a crash between DWD and the
    models restates the same days; the counts save the caller a count of its own.

    Up to `DRIVER_ROWS` old and new rows (half as many keys: a key has one row), the driver
    diffs them in Arrow and delta-rs commits only the rows that differ (`row_changes`): a
    city-day's late refunds add their rows to their originals' days rather than rewriting
    those days, and a rebuild with the same inputs writes nothing. More keys (a backfill's
    range) go by Spark's own writer, which rewrites the touched partitions from the tasks.
    """
    key, column = list(table.primary_key), table.partition_by[0]
    stale = affected.dropna(subset=key).select(*key).distinct()
    facts = tables.conform(facts, table)
    booked = booked_partitions(affected, table, books_on)
    most = DRIVER_ROWS // 2
    keys = stale.limit(most + 1).toArrow()  # one job; never more than the driver may hold
    if keys.num_rows <= most:
        where = pc.field(column).isin(booked) if booked else pc.scalar(False)
        old = tables.conform_arrow(tables.read_native_keys(table, keys, where, settings), table)
        new = tables.conform_arrow(facts.toArrow(), table)
        counts = _partition_counts(old[column], new[column], table, booked, books_on)
        changes = row_changes(old, new, table)
        if changes.num_rows:
            tables.merge_native(changes, table, settings)
        return {part: counts[part][1] for part in sorted(counts)}
    current = tables.read(facts.sparkSession, table, settings=settings)
    held = current.where(tables.in_list(column, booked)) if booked else current.limit(0)
    olds = held.join(stale, key, "left_semi").select(column, F.lit(0).alias("new"))
    # Per touched partition, the rows of those keys there now and to be, in one job.
    parts = olds.unionByName(facts.select(column, F.lit(1).alias("new")))
    found = parts.groupBy(column).agg(F.count("*"), F.sum("new")).collect()
    counts = _checked({part: (rows, new) for part, rows, new in found}, table, booked, books_on)
    if counts:
        where = tables.in_list(column, sorted(counts))
        kept = current.where(where).join(stale, key, "left_anti")
        tables.replace(kept.unionByName(facts.where(where)), table, where, settings)
    return {part: counts[part][1] for part in sorted(counts)}


def _partition_counts(
    old: pa.ChunkedArray,
    new: pa.ChunkedArray,
    table: TableContract,
    booked: list,
    books_on: str | None,
) -> dict:
    """Per partition of the keys' `old` and `new` rows: (old and new rows, new rows)."""
    counts: dict = {}
    for parts, is_new in ((old, 0), (new, 1)):
        for row in pc.value_counts(parts).to_pylist():
            rows, new_rows = counts.get(row["values"], (0, 0))
            counts[row["values"]] = (rows + row["counts"], new_rows + is_new * row["counts"])
    return _checked(counts, table, booked, books_on)


def _checked(counts: dict, table: TableContract, booked: list, books_on: str | None) -> dict:
    """The partition counts of a rewrite, once no new row books off the `booked` days: then
    the booking rule names the wrong time, and its key's old rows could be off them too and
    would stay beside the new ones. A row without a partition is no partition."""
    counts = {part: n for part, n in counts.items() if part is not None}
    days = set(booked)
    stray = sorted(str(p) for p, (_, new) in counts.items() if new and p not in days)
    if stray:
        column = table.partition_by[0]
        what = repr(column) if books_on is None else f"{books_on!r} date"
        raise ValueError(
            f"{table.name}: rows book on {stray}, not on any affected line's {what} "
            "(pipelines/build.py BOOKS_ON)"
        )
    return counts


def row_changes(old: pa.Table, new: pa.Table, table: TableContract) -> pa.Table:
    """The changes that turn the `old` rows of some keys into the `new` rows of the same keys
    (`tables.merge_native`; both conformed to `table`): rows alike in every column are left
    alone; a key only new is an insert, only old a delete, in both an update (a delete and an
    insert when its partition moved)."""
    key, column = list(table.primary_key), table.partition_by[0]
    if nested := [f.name for f in old.schema if pa.types.is_nested(f.type)]:
        raise TypeError(f"{table.name}: row_changes compares flat columns, not {nested}")
    at = ("_old_at", "_new_at")  # each side's row number, paired by key
    sides = [
        rows.select(key).append_column(name, pa.array(range(rows.num_rows), pa.int64()))
        for rows, name in ((old, at[0]), (new, at[1]))
    ]
    pairs = sides[0].join(sides[1], key, join_type="full outer")
    was, now = old.take(pairs[at[0]]), new.take(pairs[at[1]])  # a missing side: null cells
    has_was, has_now = pc.is_valid(pairs[at[0]]), pc.is_valid(pairs[at[1]])
    same = pc.and_(has_was, has_now)
    for name in old.column_names:
        same = pc.and_(same, _alike(was[name], now[name]))
    moved = pc.and_(pc.and_(has_was, has_now), pc.invert(_alike(was[column], now[column])))
    differs = pc.invert(same)
    kind = pc.if_else(pc.or_(pc.invert(has_was), moved), "insert", "update")
    upserts = now.append_column(tables.CHANGE, kind).filter(pc.and_(has_now, differs))
    gone = pc.and_(pc.and_(has_was, differs), pc.or_(pc.invert(has_now), moved))
    deletes = was.filter(gone)
    deleted = pa.array(["delete"] * deletes.num_rows, pa.string())
    return pa.concat_tables([upserts, deletes.append_column(tables.CHANGE, deleted)])


def _alike(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cell by cell, whether `a` and `b` hold the same value, two nulls alike (Spark's <=>)."""
    both = pc.and_(pc.is_valid(a), pc.is_valid(b))
    return pc.if_else(both, pc.equal(a, b), pc.and_(pc.is_null(a), pc.is_null(b)))


def replace_quarantine(
    rejects: DataFrame, affected: DataFrame, feed: str, settings: Settings
) -> None:
    """The feed's quarantine with the rows of the `affected` lines replaced by `rejects` (a
    line that is good now leaves it), in one commit. `affected` is any frame of those lines
    with `_delivery_id` and `_source_line`: the build passes its cached normalized rows.

    A feed's quarantine is small: delta-rs reads and commits it, and Spark only says which of
    its lines are among the affected ones (a semi join of the cached rows with those lines
    broadcast) and computes the rejects. A Spark read of dwd_quarantine replayed its log on
    every call, since every unit's commit moves it on (issue #4).
    """
    table = tables.contract("dwd_quarantine", settings)
    held = tables.read_native(table, pc.field("feed") == feed, settings)
    kept = held
    if held.num_rows:
        lines = affected.select(
            F.col("_delivery_id").alias("delivery_id"), F.col("_source_line").alias("source_line")
        )
        line = held.select(QUARANTINE_LINE)
        known = F.broadcast(rejects.sparkSession.createDataFrame(line))
        again = lines.join(known, QUARANTINE_LINE, "left_semi").toArrow().cast(line.schema)
        kept = held.join(again, QUARANTINE_LINE, join_type="left anti")
    new = tables.conform(rejects, table).toArrow()
    if new.num_rows == 0 and kept.num_rows == held.num_rows:
        return  # no line of the quarantine affected, none rejected: nothing to commit
    rows = pa.concat_tables([tables.conform_arrow(t, table) for t in (kept, new)])
    tables.write_native(rows, table, mode="overwrite", where=f"feed = '{feed}'", settings=settings)
