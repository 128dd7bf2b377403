"""The business keys every delivered ODS line carries, parsed once per delivery and kept.

An incremental build follows keys from the lines its deliveries brought to every other line
that shares them (pipelines/dwd/affected.py). Parsing the keys of every line ever delivered
on each build made its cost grow with the history held in ODS; the index `dwd_line_key`
keeps each delivery's typed keys instead, written when a build first meets the delivery.

Beside its keys, a line of a feed whose facts join a dimension's history at a time (a
transaction is booked with the merchant version valid at its `txn_time`) carries that time's
date: a changed dimension version then affects the lines from its date on, not every line of
its key ever delivered (pipelines/dwd/affected.py).

The index is partitioned by feed, key-rule fingerprint and delivery, so which deliveries it
holds is read from the Delta log alone (no scan), and a change of the key rules (the contract
rules of the key and time columns, the parsing code, or this module's layout of the rows) makes
a fresh index for the feed that replaces the old one. Each row repeats all the keys of its line
(`keys`), so a line found by one key brings its others without parsing them again. Builds
probe by `key_hash`, the key's 64-bit hash (pipelines/dwd/affected.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from functools import reduce
from pathlib import Path
from typing import NamedTuple

import pyarrow.compute as pc
import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from citylake.settings import Settings
from pipelines import normalize, tables
from quality import standard_codes
from warehouse_layers.contract import TableContract

INDEX = "dwd_line_key"
LINE = ["_delivery_id", "_source_line"]  # one ODS row: the delivery and the line in it


class FeedKeys(NamedTuple):
    """How a feed's lines relate: its committed ODS rows (made only when a delivery needs
    indexing), the DWD table whose rules parse its key columns, those key columns (DWD names)
    with their namespaces, and the DWD time column its facts join a dimension's history at
    (None: no such join)."""

    ods: Callable[[], DataFrame]
    table: TableContract
    keys: Mapping[tuple[str, ...], str]
    at: str | None = None


def rules_fingerprint(
    table: TableContract, keys: Mapping[tuple[str, ...], str], at: str | None, timezone: str
) -> str:
    """What the keys of `keys` (and the date of the time `at`) are parsed with: each column's
    rule, the session time zone that dates a time, and normalize.py and the code standards it
    checks with, whose any change may change a typed key, and this module, which lays the
    index out (a changed comment costs one re-index)."""

    def rule(name: str) -> dict:
        return table.column(name).model_dump(mode="json", exclude={"description"})

    spec = [[namespace, [rule(c) for c in cols]] for cols, namespace in sorted(keys.items())]
    if at is not None:  # a feed without one keeps the fingerprint it had before times came
        spec.append(["@at", [rule(at)], timezone])
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode())
    for source in (normalize.__file__, standard_codes.__file__, __file__):
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:16]


def tagged_keys(table: TableContract, keys: Mapping[tuple[str, ...], str]) -> list:
    """One column per key of `keys`: its typed value tagged with its namespace (null when any
    part is missing: such a row joins nothing and is quarantined anyway)."""
    return [key_value(table, cols, namespace) for cols, namespace in keys.items()]


def key_value(table: TableContract, columns: tuple[str, ...], namespace: str) -> Column:
    """The typed key of an ODS row as normalization will make it, tagged with its namespace."""
    parts = []
    for name in columns:
        col = table.column(name)
        assert col.rule is not None and col.source is not None, f"{table.name}.{name}"
        parts.append(normalize.parse(col.rule, F.col(col.source), col).value.cast("string"))
    missing = parts[0].isNull()
    for part in parts[1:]:
        missing = missing | part.isNull()
    return F.when(~missing, F.concat_ws("\x1f", F.lit(namespace), *parts))


def key_hash(key: Column) -> Column:
    """A key's 64-bit hash, as the index holds it: what a build probes the index by."""
    return F.xxhash64(key)


def event_date(table: TableContract, at: str | None) -> Column:
    """The date of the DWD time `at` of an ODS row as normalization will parse it (null when
    it does not parse, or without `at`)."""
    if at is None:
        return F.lit(None).cast("date")
    col = table.column(at)
    assert col.rule is not None and col.source is not None, f"{table.name}.{at}"
    return F.to_date(normalize.parse(col.rule, F.col(col.source), col).value)


def _index_rows(ods: DataFrame, feed: str, rules: str, spec: FeedKeys, todo: dict) -> DataFrame:
    """The index rows of the deliveries `todo` (delivery id -> business date) of `ods`."""
    new = ods.where(tables.in_list("_business_date", sorted(set(todo.values())))).where(
        F.col("_delivery_id").isin(sorted(todo))
    )
    parsed = F.array_distinct(
        F.filter(F.array(*tagged_keys(spec.table, spec.keys)), lambda key: key.isNotNull())
    )
    return (
        new.select(
            F.lit(feed).alias("feed"),
            F.lit(rules).alias("rules"),
            F.col("_delivery_id").alias("delivery_id"),
            F.col("_source_line").alias("source_line"),
            F.col("_business_date").alias("business_date"),
            event_date(spec.table, spec.at).alias("event_date"),
            parsed.alias("keys"),
        )
        .withColumn("key", F.explode("keys"))  # no row for a line with no key that parses
        .withColumn("key_hash", key_hash(F.col("key")))
    )


def index_deliveries(feeds: Mapping[str, FeedKeys], settings: Settings) -> None:
    """Index the committed deliveries (`loaded > 0`) the index lacks, of every feed (by feed
    name), in one commit: a Delta commit from Spark costs seconds, one per feed added up on
    every build. A feed met under new key rules is indexed afresh and its old rows go."""
    index = tables.contract(INDEX, settings)
    held = {
        (p["feed"], p["rules"], p["delivery_id"])
        for p in tables.ensure_native(index, settings).partitions()
    }
    log = tables.read_native_current(
        tables.contract("ods_delivery_log", settings),
        pc.field("feed").isin(list(feeds)) & (pc.field("loaded") > 0),
        settings,
    )
    columns = (log[c].to_pylist() for c in ("feed", "delivery_id", "business_date"))
    delivered = list(zip(*columns, strict=True))
    appends = []
    for feed, spec in feeds.items():
        rules = rules_fingerprint(spec.table, spec.keys, spec.at, settings.timezone)
        indexed = {d for f, r, d in held if f == feed and r == rules}
        todo = {d: day for f, d, day in delivered if f == feed and d not in indexed}
        if not todo:
            continue
        rows = _index_rows(spec.ods(), feed, rules, spec, todo)
        if indexed:
            appends.append(rows)
        else:  # a first index of the feed under these rules: keys parsed by others go
            tables.replace(rows, index, where=f"feed = '{feed}'", settings=settings)
    if appends:
        tables.append(reduce(DataFrame.unionByName, appends), index, settings=settings)


def line_keys(
    ods: DataFrame,
    feed: str,
    table: TableContract,
    keys: Mapping[tuple[str, ...], str],
    settings: Settings,
    at: str | None = None,
) -> DataFrame:
    """(`_delivery_id`, `_source_line`, `_business_date`, `_key`, `_key_hash`, `_event_date`,
    `_keys`) for every key of every committed line of the feed's `ods` rows (`_keys`: all the
    keys of the line), from the index, after indexing the deliveries it does not hold yet (a build
    indexes every feed's at once before, `index_deliveries`).

    A line whose keys all fail to parse has no entry (normalization quarantines it). The index
    may hold deliveries newer than `ods` (a build of an older pinned version): their keys only
    ever add related lines, and only lines of `ods` are read in the end.
    """
    index_deliveries({feed: FeedKeys(lambda: ods, table, keys, at)}, settings)
    rules = rules_fingerprint(table, keys, at, settings.timezone)
    held_rows = tables.read(ods.sparkSession, tables.contract(INDEX, settings), settings=settings)
    return held_rows.where((F.col("feed") == feed) & (F.col("rules") == rules)).select(
        *[
            F.col(name[1:]).alias(name)
            for name in (*LINE, "_business_date", "_key", "_key_hash", "_event_date", "_keys")
        ]
    )
