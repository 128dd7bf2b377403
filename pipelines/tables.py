"""Delta tables by contract: where each one lives, creating it from its DDL, reading, writing.

Tables live at ``<warehouse>/<layer>/<table>`` (path-based Delta tables, so no metastore is
needed in embedded mode; Trino and the catalog register the same paths later).

Two writers share the tables. Spark (through delta-spark) creates every table from its contract
and writes DWD and later layers. Ingestion appends deliveries to ODS through delta-rs, the Delta
project's native writer: a delivery is one local file turned into one commit, and doing that
from Arrow without a JVM is ~10x faster than through Spark (`benchmarks/ingest.py`). Both speak
the same Delta protocol (reader 1 / writer 2) and the same idempotent-transaction ids.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import (
    ColumnProperties,
    CommitProperties,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake import DeltaTable as NativeDeltaTable
from deltalake.exceptions import CommitFailedError
from pyspark.sql import Column, DataFrame, SparkSession

from citylake.settings import Settings, get_settings
from warehouse_layers.contract import TableContract, feed_table, load_contracts


def contracts(settings: Settings | None = None) -> dict[str, TableContract]:
    return load_contracts((settings or get_settings()).contracts_dir)


def contract(name: str, settings: Settings | None = None) -> TableContract:
    return contracts(settings)[name]


def feed_contract(feed: str, settings: Settings | None = None) -> TableContract:
    """The ODS contract that declares `feed`."""
    return feed_table(contracts(settings), feed)


def table_path(table: TableContract, settings: Settings | None = None) -> str:
    return (settings or get_settings()).table_path(table.layer, table.name)


_EXISTING: set[str] = set()  # paths known to hold a Delta table in this process


_CREATING = threading.Lock()


def ensure_table(
    spark: SparkSession, table: TableContract, settings: Settings | None = None
) -> str:
    """Create the Delta table from its contract if it does not exist; return its path."""
    path = table_path(table, settings)
    if path in _EXISTING:
        return path
    with _CREATING:  # the build's units side by side may reach a missing table at once
        if path in _EXISTING:
            return path
        if not written(table, settings):
            if not path.startswith(("s3a://", "s3://")):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            spark.sql(table.create_table_ddl(path))
        else:
            existing = set(spark.read.format("delta").load(path).columns)
            evolve = table.add_columns_ddl(path, existing)
            if evolve is not None:  # the contract gained columns since the table was created
                spark.sql(evolve)
        _EXISTING.add(path)
    return path


def written(table: TableContract, settings: Settings | None = None) -> bool:
    """Whether the table exists (has a Delta log), asked without creating it."""
    # Asked of the Delta log by delta-rs: delta-spark's DeltaTable.isDeltaTable needs the
    # py4j gateway, which a Spark Connect session (settings.spark.connect_url) does not have.
    return NativeDeltaTable.is_deltatable(
        native_uri(table, settings), storage_options=storage_options(settings)
    )


def read(
    spark: SparkSession,
    table: TableContract,
    version: int | None = None,
    settings: Settings | None = None,
) -> DataFrame:
    path = ensure_table(spark, table, settings)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def version(spark: SparkSession, table: TableContract, settings: Settings | None = None) -> int:
    """The table's current Delta version (what a regulator time-travels back to)."""
    del spark  # read from the log by delta-rs: milliseconds, where a Spark history() takes ~1 s
    return ensure_native(table, settings).version()


def conform(df: DataFrame, table: TableContract) -> DataFrame:
    """Select and cast `df` to the contract's columns, in contract order."""
    missing = [c.name for c in table.columns if c.name not in df.columns]
    if missing:
        raise ValueError(f"{table.name}: the data lacks contract columns {missing}")
    return df.select(*[df[c.name].cast(c.type).alias(c.name) for c in table.columns])


def append(
    df: DataFrame,
    table: TableContract,
    *,
    txn: tuple[str, int] | None = None,
    settings: Settings | None = None,
) -> None:
    """Append; with `txn` = (app id, version) Delta skips a write it has already committed."""
    path = ensure_table(df.sparkSession, table, settings)
    writer = conform(df, table).write.format("delta").mode("append")
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    writer.save(path)


def replace(
    df: DataFrame, table: TableContract, where: str | None = None, settings: Settings | None = None
) -> None:
    """Overwrite the rows matching `where` (all rows when None) in one atomic commit."""
    path = ensure_table(df.sparkSession, table, settings)
    writer = conform(df, table).write.format("delta").mode("overwrite")
    if where is not None:
        writer = writer.option("replaceWhere", where)
    writer.save(path)


_ARROW_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
    "double": pa.float64(),
    "array<string>": pa.list_(pa.string()),
    "map<string,bigint>": pa.map_(pa.string(), pa.int64()),
}


def arrow_type(type_: str) -> pa.DataType:
    """The Arrow type of a contract column type (the Spark SQL name)."""
    if type_.startswith("decimal("):
        precision, scale = type_.removeprefix("decimal(").removesuffix(")").split(",")
        return pa.decimal128(int(precision), int(scale))
    return _ARROW_TYPES[type_]


def arrow_schema(table: TableContract) -> pa.Schema:
    """The Arrow schema that delta-rs writes for a contract's columns."""
    return pa.schema([(c.name, arrow_type(c.type)) for c in table.columns])


def from_columns(spark: SparkSession, columns: dict[str, list], table: TableContract) -> DataFrame:
    """A Spark frame of `table`'s schema from Python column lists, through Arrow.

    Arrow hands Spark whole columns at once: for a 300,000-line delivery this is ~15x faster
    than going through pandas objects.
    """
    arrays = {c.name: pa.array(columns[c.name], arrow_type(c.type)) for c in table.columns}
    return conform(spark.createDataFrame(pa.table(arrays)), table)


def storage_options(settings: Settings | None = None) -> dict[str, str] | None:
    """delta-rs options for an object-store warehouse (the same bucket Spark reaches by s3a)."""
    settings = settings or get_settings()
    if not settings.is_remote_warehouse:
        return None
    s3 = settings.s3
    return {
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key.get_secret_value(),
        "AWS_REGION": s3.region,
        "AWS_ALLOW_HTTP": str(s3.endpoint.startswith("http://")).lower(),
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": str(not s3.path_style).lower(),
        # Safe concurrent commits on S3 without a lock table: MinIO and S3 honour If-None-Match.
        "conditional_put": "etag",
    }


def native_uri(table: TableContract, settings: Settings | None = None) -> str:
    path = table_path(table, settings)
    return "s3://" + path.removeprefix("s3a://") if path.startswith("s3a://") else path


# Writers side by side in one process (the build's units): see write_native.
_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


def _writer(path: str) -> threading.Lock:
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(path, threading.Lock())


def ensure_native(table: TableContract, settings: Settings | None = None) -> NativeDeltaTable:
    """The table opened by delta-rs; created first from its contract (by Spark) if missing."""
    settings = settings or get_settings()
    uri, options = native_uri(table, settings), storage_options(settings)
    if table_path(table, settings) in _EXISTING:
        return NativeDeltaTable(uri, storage_options=options)
    if written(table, settings):
        native = NativeDeltaTable(uri, storage_options=options)
        if {c.name for c in table.columns} <= {f.name for f in native.schema().fields}:
            _EXISTING.add(table_path(table, settings))
            return native
    from citylake.spark import get_spark  # a JVM only to create or evolve a table

    ensure_table(get_spark(settings), table, settings)
    return NativeDeltaTable(uri, storage_options=options)


def read_native(
    table: TableContract,
    where: pc.Expression | None = None,
    settings: Settings | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """Rows of a (small) table read without Spark, e.g. the delivery log during ingestion."""
    return _native_dataset(table, settings).to_table(columns=columns, filter=where)


_CURRENT: dict[str, tuple[tuple[str, int], pa.Table]] = {}  # path -> ((id, version), rows)
_CURRENT_LOCK = threading.Lock()


def read_native_current(
    table: TableContract,
    where: pc.Expression | None = None,
    settings: Settings | None = None,
    version: int | None = None,
) -> pa.Table:
    """Rows of a small table at its current version (or at `version`), read without Spark and
    kept until a commit moves the version (or the table is made anew): a build reads the
    delivery log several times per feed, and each read opened every one of its files (one per
    delivery: 0.17 s at 341, growing by the feeds' deliveries a day), where the version alone
    costs a read of the Delta log's tail."""
    native = ensure_native(table, settings)
    if version is not None:
        native.load_as_version(version)
    # With the table's id: a table made anew at the path (a test's, a cleaned warehouse's)
    # starts its versions again.
    path, now = table_path(table, settings), (native.metadata().id, native.version())
    with _CURRENT_LOCK:
        held = _CURRENT.get(path)
    if held is None or held[0] != now:
        rows = _dataset_of(native).to_table()
        held = (now, rows)
        with _CURRENT_LOCK:
            _CURRENT[path] = held
    return held[1] if where is None else held[1].filter(where)


def read_native_keys(
    table: TableContract,
    keys: pa.Table,
    where: pc.Expression,
    settings: Settings | None = None,
) -> pa.Table:
    """The rows of `table` matching `where` whose columns of `keys` equal one of its rows, read
    without Spark, batch by batch: the driver holds the matches and at most a million rows
    read, not the partitions."""
    dataset = _native_dataset(table, settings)
    keys = keys.cast(pa.schema([dataset.schema.field(name) for name in keys.column_names]))
    found: list[pa.Table] = []
    pending: list[pa.RecordBatch] = []

    def join_pending() -> None:
        rows = pa.Table.from_batches(pending, dataset.schema)
        matches = rows.join(keys, keys.column_names, join_type="left semi")
        found.append(matches.select(dataset.schema.names))
        pending.clear()

    for batch in dataset.to_batches(filter=where):  # a generator: one batch read at a time
        pending.append(batch)
        # Joined a million rows at a time: each join hashes all the keys again.
        if sum(b.num_rows for b in pending) >= 1_000_000:
            join_pending()
    if pending:
        join_pending()
    return pa.concat_tables(found) if found else dataset.schema.empty_table()


def count_rows(
    table: TableContract, where: pc.Expression | None = None, settings: Settings | None = None
) -> int:
    """The table's rows (matching `where`) counted without Spark: by a partition column's
    `where` from the Parquet footers alone, where a Spark count costs a job (issue #4)."""
    return _native_dataset(table, settings).count_rows(filter=where)


def _native_dataset(table: TableContract, settings: Settings | None) -> ds.Dataset:
    return _dataset_of(ensure_native(table, settings))


def _dataset_of(native: NativeDeltaTable) -> ds.Dataset:
    # Spark writes timestamps as INT96, which Arrow reads as nanoseconds by default: a
    # dimension's open end (9999-12-31) does not fit those.
    options = ds.ParquetReadOptions(coerce_int96_timestamp_unit="us")
    return native.to_pyarrow_dataset(parquet_read_options=options)


# A delivery is one file, and a Spark task reads whole row groups: in parquet-rs's default of
# a million rows, a city-day's 305 k transactions were one group, read by one task. In groups
# of 65,536 a read of the day's file alone takes both cores (warm: its keys indexed in 1.5 s,
# not 2.3 s; normalized in 2.6 s, not 3.4 s). A whole build gains nothing measurable: its
# other unit keeps the second core busy anyway (issue #4).
ODS_ROW_GROUP = 65_536

# Raw delivered text is mostly unique values (ids, times, amounts): Parquet dictionaries there
# overflow and are thrown away after the work is done, so they are off except for the lineage
# columns, which are constant per delivery. Measured on a 37 MB delivery: 0.39 s -> 0.23 s per
# write, files ~40 % larger. LZ4 writes faster than Snappy at the same size; Spark and Trino
# read both.
_ODS_WRITER = WriterProperties(
    max_row_group_size=ODS_ROW_GROUP,
    compression="LZ4_RAW",
    # Column-chunk statistics are what Delta's file skipping reads; page-level ones cost more.
    default_column_properties=ColumnProperties(
        dictionary_enabled=False, statistics_enabled="CHUNK"
    ),
    column_properties={
        name: ColumnProperties(dictionary_enabled=True, statistics_enabled="CHUNK")
        for name in ("_delivery_id", "_business_date", "_source_file", "_ingested_at", "feed")
    },
)


def append_native(
    data: pa.Table,
    table: TableContract,
    *,
    txn: tuple[str, int],
    settings: Settings | None = None,
) -> bool:
    """Append Arrow rows in one Delta commit through delta-rs, once per `txn` (app id, version).

    Returns False when that transaction was already committed (a rerun after a crash).
    """
    native = ensure_native(table, settings)
    done = native.transaction_version(txn[0])
    if done is not None and done >= txn[1]:
        return False
    try:
        write_deltalake(
            native,
            conform_arrow(data, table),
            mode="append",
            commit_properties=CommitProperties(app_transactions=[Transaction(txn[0], txn[1])]),
            writer_properties=_ODS_WRITER,
        )
    except CommitFailedError:
        # Lost a race to a concurrent writer of the same txn (one delivery ingested twice at
        # once, e.g. a file and its re-sent copy): Delta refused our copy, theirs stands.
        native.update_incremental()
        done = native.transaction_version(txn[0])
        if done is None or done < txn[1]:
            raise
        return False
    return True


def write_native(
    data: pa.Table,
    table: TableContract,
    *,
    mode: Literal["append", "overwrite"],
    where: str | None = None,
    settings: Settings | None = None,
) -> None:
    """A few rows in one Delta commit through delta-rs, without a Spark job: what a build keeps
    beside its data (the gate outcomes, the feed dimension, the quarantine), where a Spark write
    of a handful of rows costs a second or two of scheduling and log replay. An overwrite with
    `where` replaces only the rows matching it, as Spark's replaceWhere does."""
    if where is not None and mode != "overwrite":  # an append cannot honour it: say so
        raise ValueError(f"write_native: `where` needs mode='overwrite', not {mode!r}")
    # One commit at a time per table in this process: the build's units side by side each
    # replace their own feed's part of dwd_quarantine, and a commit that lost the race to
    # another would fail rather than retry.
    with _writer(table_path(table, settings)):
        write_deltalake(
            ensure_native(table, settings),
            conform_arrow(data, table),
            mode=mode,
            predicate=where,
        )


CHANGE = "_change"  # the column of a row change: insert, update or delete (`merge_native`)


def merge_native(changes: pa.Table, table: TableContract, settings: Settings | None = None) -> None:
    """Apply row changes to a partitioned table in one Delta commit through delta-rs: each
    row of `changes` is a contract row and its `_change`. A row is found by its primary key in
    its partition: an `update` replaces it, a `delete` removes it, an `insert` adds it (a row
    that moves partition is a delete there and an insert here).

    Only the files holding an updated or deleted row are rewritten, so a late refund adds its
    row to its original's day instead of rewriting the day; changes that are all inserts are
    a plain append."""
    kinds = set(pc.unique(changes.column(CHANGE)).to_pylist())  # not one per row
    if unknown := kinds - {"insert", "update", "delete"}:
        raise ValueError(f"merge_native: unknown changes {sorted(unknown)}")
    rows = conform_arrow(changes, table)
    if kinds <= {"insert"}:
        if rows.num_rows:
            write_native(rows, table, mode="append", settings=settings)
        return
    source = rows.append_column(CHANGE, changes.column(CHANGE).cast(pa.string()))
    on = " AND ".join(f"t.{c} = s.{c}" for c in (*table.primary_key, *table.partition_by))
    with _writer(table_path(table, settings)):
        # Not streamed: the source's partition values then prune the target's files scanned.
        (
            ensure_native(table, settings)
            .merge(source, on, source_alias="s", target_alias="t", streamed_exec=False)
            .when_matched_delete(f"s.{CHANGE} = 'delete'")
            .when_matched_update_all(f"s.{CHANGE} = 'update'", except_cols=[CHANGE])
            .when_not_matched_insert_all(f"s.{CHANGE} = 'insert'", except_cols=[CHANGE])
            .execute()
        )


def compact_native(table: TableContract, settings: Settings | None = None) -> dict[str, Any]:
    """Rewrite each partition's small files (under delta-rs's 100 MB target) into fewer, in one
    Delta commit that changes no row (`dataChange` false, so a reader's version-pinned time
    travel still finds the old files); a partition of one file is left alone. Returns
    delta-rs's metrics (`numFilesRemoved`, `numFilesAdded`, `partitionsOptimized`, ...).

    Raises delta-rs's CommitFailedError when another process rewrote or deleted one of those
    files meanwhile: nothing is committed then, and the next run compacts what is left."""
    with _writer(table_path(table, settings)):  # not beside a build's commit in this process
        return ensure_native(table, settings).optimize.compact()


def replace_small(df: DataFrame, table: TableContract, settings: Settings | None = None) -> bool:
    """Overwrite a small table (a dimension, rebuilt whole) through delta-rs, and only when its
    rows changed: most builds leave the code lists and most dimensions as they were, and an
    unchanged table keeps its Delta version. Returns whether it wrote."""
    return replace_small_native(conform(df, table).toArrow(), table, settings)


def replace_small_native(
    data: pa.Table, table: TableContract, settings: Settings | None = None
) -> bool:
    """`replace_small` of Arrow rows: the table overwritten in one file, only when they differ
    from its rows (so its version moves with its data alone). Returns whether it wrote."""
    rows = conform_arrow(data, table)
    if _same_rows(rows, conform_arrow(read_native(table, settings=settings), table)):
        return False
    write_native(rows, table, mode="overwrite", settings=settings)
    return True


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Whether two tables of one contract hold the same rows, in any order."""
    if a.num_rows != b.num_rows or a.schema != b.schema:
        return False
    keys = [(f.name, "ascending") for f in a.schema if not pa.types.is_nested(f.type)]
    return a.sort_by(keys).equals(b.sort_by(keys))


def conform_arrow(data: pa.Table, table: TableContract) -> pa.Table:
    """Select and cast Arrow columns to the contract's columns, in contract order."""
    missing = [c.name for c in table.columns if c.name not in data.column_names]
    if missing:
        raise ValueError(f"{table.name}: the data lacks contract columns {missing}")
    return pa.table({c.name: data[c.name].cast(arrow_type(c.type)) for c in table.columns})


def date_range_predicate(column: str, start: dt.date, end: dt.date) -> str:
    """SQL for `column` within [start, end]: the rows one build of a range replaces."""
    return f"{column} >= '{start.isoformat()}' AND {column} <= '{end.isoformat()}'"


def one_of(value: Column, values: Sequence[str]) -> Column:
    """`value.isin(values)`, with a long list sent to the JVM in one piece.

    PySpark's isin sends each literal in a round trip of its own: 2.4 s for the 3,210 GB/T 2260
    codes, paid by every rule and check that used them (20 s of a city-day's build), and a
    year of deliveries' ids costs as much. Spark Connect sends the list in one message anyway.
    """
    from pyspark.sql.classic.column import Column as ClassicColumn

    if not isinstance(value, ClassicColumn) or not values:
        return value.isin(list(values))
    if any(_UNIT_SEPARATOR in v for v in values):
        raise ValueError(f"one_of: a value holds the separator {_UNIT_SEPARATOR!r}")
    from pyspark import SparkContext

    jvm = SparkContext._active_spark_context._jvm  # type: ignore[union-attr]
    # Split on the JVM side: py4j would send a Python list to it element by element.
    split = jvm.java.util.regex.Pattern.compile(_UNIT_SEPARATOR)
    listed = split.splitAsStream(_UNIT_SEPARATOR.join(values)).toList()
    return ClassicColumn(value._jc.isInCollection(listed))


_UNIT_SEPARATOR = "\x1f"  # in no code or id


def in_list(column: str, values: list) -> str:
    """A predicate for `column` in `values` (dates, periods, codes), for replaceWhere."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"
