"""SQLMesh on citylake's Spark: Delta writes by REPLACE WHERE, tables at the warehouse paths.

Two adaptations of SQLMesh's Spark engine (see docs/decisions/sqlmesh-on-spark.md):

- A day range is written with Delta's ``INSERT INTO t REPLACE WHERE <range> SELECT ...``: one
  atomic commit that replaces exactly the range, even when the range comes out empty. The stock
  ``INSERT OVERWRITE`` with dynamic partition overwrite keeps a restated day's stale rows when
  the day has no rows any more (a day whose only merchant was re-classified, say).
- The session is citylake's own (Delta extension, in-memory catalog, loopback driver), never a
  Hive session SQLMesh would build. Its in-memory catalog forgets table names when the process
  ends, so every process registers the contract tables at their paths before SQLMesh runs
  (``register_tables``): SQLMesh then sees ``dws.dws_trade_merchant_daily`` exactly where
  ``<warehouse>/dws/dws_trade_merchant_daily`` lies, which is also what Trino reads.
"""

from __future__ import annotations

import typing as t

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from sqlmesh.core.config.connection import SparkConnectionConfig
from sqlmesh.core.engine_adapter.shared import InsertOverwriteStrategy
from sqlmesh.core.engine_adapter.spark import SparkEngineAdapter

from citylake.settings import Settings
from citylake.spark import get_spark
from pipelines import tables
from warehouse_layers.contract import TableContract


class DeltaSparkEngineAdapter(SparkEngineAdapter):
    INSERT_OVERWRITE_STRATEGY = InsertOverwriteStrategy.REPLACE_WHERE


class DeltaSparkConnectionConfig(SparkConnectionConfig):
    """SQLMesh's Spark connection, on citylake's session and the Delta adapter."""

    @property
    def _engine_adapter(self) -> type[DeltaSparkEngineAdapter]:
        return DeltaSparkEngineAdapter

    @property
    def _static_connection_kwargs(self) -> dict[str, t.Any]:
        return {"spark": get_spark()}


# schema or `layer.table` -> the location this process's catalog registered for it
_REGISTERED: dict[str, str] = {}


def restore_write_mode(spark: SparkSession) -> None:
    """SQLMesh's cursor switches the shared session to dynamic partition overwrite; citylake's
    own full-table overwrites need the default back (or old partitions would survive them)."""
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "static")


def _table_type(spark: SparkSession, name: str) -> str | None:
    """The catalog's type for `name`; None when its data is gone (a test's removed warehouse)."""
    try:
        return spark.catalog.getTable(name).tableType
    except AnalysisException as err:
        if "DELTA_PATH_DOES_NOT_EXIST" in str(err):  # nothing left that a DROP could delete
            return None
        raise


def register_tables(
    spark: SparkSession, contracts: t.Sequence[TableContract], settings: Settings
) -> None:
    """Make `<layer>.<table>` name the contract's Delta table at its warehouse path.

    Creates a missing table from its contract first (NOT NULL and comments included, which
    SQLMesh's own CREATE would drop). Registrations are external tables: dropping a stale one
    (a test moved the warehouse) never deletes data.
    """
    layers = sorted({c.layer for c in contracts})
    for layer in layers:
        location = f"{settings.warehouse.rstrip('/')}/{layer}"
        if _REGISTERED.get(layer) != location:
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {layer} LOCATION '{location}'")
            spark.sql(f"ALTER SCHEMA {layer} SET LOCATION '{location}'")
            _REGISTERED[layer] = location
    for table in contracts:
        path = tables.ensure_table(spark, table, settings)
        name = f"{table.layer}.{table.name}"
        if _REGISTERED.get(name) == path:
            continue
        if name in _REGISTERED or spark.catalog.tableExists(name):
            if _table_type(spark, name) == "MANAGED":  # DROP would delete its data
                raise RuntimeError(
                    f"{name} is a managed table in the session catalog; citylake registers "
                    f"contract tables at their paths only ({path}). Drop it by hand if it is stale."
                )
            spark.sql(f"DROP TABLE {name}")  # external: only the name goes
        spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{path}'")
        _REGISTERED[name] = path
