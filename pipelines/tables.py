"""Delta tables by contract: where each one lives, creating it from its DDL, reading, writing.

Tables live at ``<warehouse>/<layer>/<table>`` (path-based Delta tables, so no metastore is
needed in embedded mode; Trino and the catalog register the same paths later).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

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


def ensure_table(
    spark: SparkSession, table: TableContract, settings: Settings | None = None
) -> str:
    """Create the Delta table from its contract if it does not exist; return its path."""
    path = table_path(table, settings)
    if path in _EXISTING:
        return path
    if not DeltaTable.isDeltaTable(spark, path):
        if not path.startswith(("s3a://", "s3://")):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        spark.sql(table.create_table_ddl(path))
    _EXISTING.add(path)
    return path


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
    path = ensure_table(spark, table, settings)
    return int(DeltaTable.forPath(spark, path).history(1).collect()[0]["version"])


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
}


def from_columns(spark: SparkSession, columns: dict[str, list], table: TableContract) -> DataFrame:
    """A Spark frame of `table`'s schema from Python column lists, through Arrow.

    Arrow hands Spark whole columns at once: for a 300,000-line delivery this is ~15x faster
    than going through pandas objects.
    """
    arrays = {c.name: pa.array(columns[c.name], _ARROW_TYPES[c.type]) for c in table.columns}
    return conform(spark.createDataFrame(pa.table(arrays)), table)
