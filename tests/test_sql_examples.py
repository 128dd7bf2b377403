"""docs/sql-examples.md stays true to the contracts (issue #7): every example is Trino SQL that
names only tables of the `lake` catalog that exist and columns those tables have. The examples
were run on real Trino once (the doc says on what); this keeps a renamed column from leaving a
broken example behind, without a JVM."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from citylake.settings import PROJECT_ROOT, get_settings
from warehouse_layers.contract import load_contracts

DOC = PROJECT_ROOT / "docs" / "sql-examples.md"


def examples() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)


def lake_schema() -> dict:
    """catalog -> schema (layer) -> table -> column -> type, from the contracts."""
    settings = get_settings()
    layers: dict[str, dict] = {}
    for contract in load_contracts(Path(settings.contracts_dir)).values():
        columns = {c.name: "varchar" for c in contract.columns}
        layers.setdefault(contract.layer, {})[contract.name] = columns
    return {settings.trino.catalog: layers}


def test_the_doc_has_six_to_eight_examples() -> None:
    assert 6 <= len(examples()) <= 8


@pytest.mark.parametrize("sql", examples(), ids=lambda s: s.split("FROM ")[1].split()[0])
def test_example_names_real_tables_and_columns(sql: str) -> None:
    tree = sqlglot.parse_one(sql, read="trino")
    schema = lake_schema()
    # qualify resolves every column against the schema and raises on one no table has
    qualified = qualify(tree, schema=schema, dialect="trino", validate_qualify_columns=True)
    for table in qualified.find_all(exp.Table):
        assert table.catalog == "lake", table.sql()
        assert table.name in schema["lake"][table.db], table.sql()


def test_a_renamed_column_is_caught() -> None:
    sql = examples()[0]
    assert "t.refund_fen" in sql
    broken = sqlglot.parse_one(sql.replace("t.refund_fen", "t.refunded_fen"), read="trino")
    with pytest.raises(sqlglot.errors.OptimizeError, match="refunded_fen"):
        qualify(broken, schema=lake_schema(), dialect="trino", validate_qualify_columns=True)
