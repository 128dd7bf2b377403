"""Running a SQL model of the DWS/ADS layers for a date range.

A model is ``models/<layer>/<table>.sql`` beside its contract ``warehouse_layers/<layer>/
<table>.yaml``; the contract's ``upstream`` tables are visible to the SQL by name. The result
replaces exactly the model's rows for ``biz_date`` in [start, end] in one Delta commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from citylake.settings import Settings, get_settings
from pipelines import tables


def model_sql(name: str, settings: Settings) -> str:
    table = tables.contract(name, settings)
    return (settings.models_dir / table.layer / f"{name}.sql").read_text(encoding="utf-8")


def run_model(
    spark: SparkSession,
    name: str,
    start: dt.date,
    end: dt.date,
    *,
    params: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> DataFrame:
    settings = settings or get_settings()
    table = tables.contract(name, settings)
    for upstream in table.upstream:
        tables.read(
            spark, tables.contract(upstream, settings), settings=settings
        ).createOrReplaceTempView(upstream)
    # Parameters are SQL session variables: named `:param` binding is not applied through
    # Delta's SQL parser on this Spark/Delta pair (UNBOUND_SQL_PARAMETER), variables are.
    variables = {"start_date": start, "end_date": end, **(params or {})}
    for var, value in variables.items():
        spark.sql(f"DECLARE OR REPLACE VARIABLE {var} {_sql_type(value)} DEFAULT {_literal(value)}")
    result = spark.sql(model_sql(name, settings))
    tables.replace(
        result, table, where=date_range_predicate("biz_date", start, end), settings=settings
    )
    return tables.read(spark, table, settings=settings).where(
        date_range_predicate("biz_date", start, end)
    )


def _sql_type(value: Any) -> str:
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, int):
        return "BIGINT"
    return "STRING"


def _literal(value: Any) -> str:
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def date_range_predicate(column: str, start: dt.date, end: dt.date) -> str:
    return f"{column} >= '{start.isoformat()}' AND {column} <= '{end.isoformat()}'"
