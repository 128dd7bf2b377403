"""A model's SQLMesh header, generated from its table contract (say a thing once).

Kind: a table partitioned by a date column is INCREMENTAL_BY_TIME_RANGE on it, so a build
rewrites exactly the days it names. A table of months (the contract's ``month_column``) is
incremental by month: a restated day rewrites its whole month, and the month still running
shows (``allow_partials``); it holds every month its inputs have (``MONTHS_START``), as tax
filings reach back years before the daily models' start. Any other table (indicators with
growth over months or years: a month's row depends on other months) is FULL and is recomputed
whole from its inputs on every build.

Audits are blocking: one ``contract_rows`` audit (models/audits/) finds the rows that break a
column check of the contract (not null, accepted values, range, pattern) or share their primary
key, in one query: 17 single checks took 30 s on the two trade models, a ``forall`` and a
uniqueness audit 5 s, and that pair cost a query each on every model of every build.
"""

from __future__ import annotations

from warehouse_layers.contract import Column, TableContract

MODEL_LAYERS = ("dws", "ads")
DATE_TYPES = ("date", "timestamp")
MONTHS_START = "2000-01-01"  # before any filing a feed can carry: nothing is left out


def model_name(table: TableContract) -> str:
    return f"{table.layer}.{table.name}"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_column(table: TableContract) -> str | None:
    """The column a model is incremental on: its month column or its date partition, if any."""
    if table.month_column is not None:
        return table.month_column
    if not table.partition_by:
        return None
    column = table.column(table.partition_by[0])
    return column.name if column.type in DATE_TYPES else None


def column_checks(column: Column) -> list[str]:
    """The contract's checks of one column as SQL predicates that hold for a good row."""
    name = f"`{column.name}`"
    checks = []
    if not column.nullable:
        checks.append(f"{name} IS NOT NULL")
    conditions = []
    if column.values is not None:
        conditions.append(f"{name} IN ({', '.join(_quote(v) for v in column.values)})")
    if column.min is not None:
        conditions.append(f"{name} >= {column.min:g}")
    if column.max is not None:
        conditions.append(f"{name} <= {column.max:g}")
    if column.pattern is not None:
        conditions.append(f"{name} RLIKE {_quote(column.pattern)}")
    checks += [f"({name} IS NULL OR {c})" for c in conditions]
    return checks


def audits(table: TableContract) -> list[str]:
    checks = [check for column in table.columns for check in column_checks(column)]
    criteria = f"criteria := ({', '.join(checks)})"
    columns = f"columns := ({', '.join(table.primary_key)})"
    if checks and table.primary_key:  # both in one query (models/audits/contract_rows.sql)
        return [f"contract_rows({criteria}, {columns})"]
    if checks:
        return [f"forall({criteria})"]
    if table.primary_key:
        return [f"unique_combination_of_columns({columns})"]
    return []


def header(table: TableContract) -> str:
    """The ``MODEL (...)`` statement of a DWS/ADS table."""
    column = time_column(table)
    kind = f"INCREMENTAL_BY_TIME_RANGE (time_column {column})" if column else "FULL"
    properties = {
        "citylake.layer": table.layer,
        "citylake.domain": table.domain,
        "citylake.owner_department": table.owner_department,
        "citylake.primary_key": ",".join(table.primary_key),
        "delta.logRetentionDuration": f"interval {table.retention_days} days",
        "delta.deletedFileRetentionDuration": "interval 7 days",
    }
    lines = [
        f"name {model_name(table)}",
        f"kind {kind}",
        "table_format delta",
        f"description {_quote(f'{table.description.zh} / {table.description.en}')}",
        f"owner {_quote(table.owner_department)}",
        "columns (" + ", ".join(f"{c.name} {c.type.upper()}" for c in table.columns) + ")",
        "column_descriptions ("
        + ", ".join(f"{c.name} = {_quote(c.description.zh)}" for c in table.columns)
        + ")",
        "physical_properties ("
        + ", ".join(f'"{k}" = {_quote(v)}' for k, v in properties.items())
        + ")",
    ]
    if table.month_column is not None:
        lines += ["interval_unit 'month'", "allow_partials true", f"start '{MONTHS_START}'"]
    if table.primary_key:
        lines.append(f"grain ({', '.join(table.primary_key)})")
    if table.partition_by:
        lines.append(f"partitioned_by ({', '.join(table.partition_by)})")
    if found := audits(table):
        lines.append(f"audits ({', '.join(found)})")
    return "MODEL (\n  " + ",\n  ".join(lines) + "\n);\n"


def external_columns(table: TableContract) -> dict[str, str]:
    return {c.name: c.type.upper() for c in table.columns}
